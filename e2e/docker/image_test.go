package docker

import (
	"fmt"
	"strings"
	"testing"
)

// TestDockerImage: the image built the documented way runs the node as an
// unprivileged user, and Docker's own health check (HEALTHCHECK through
// `raftex health`) calls every node healthy.
func TestDockerImage(t *testing.T) {
	c := newCluster(t)
	if user := strings.TrimSpace(c.docker("image", "inspect", "--format", "{{.Config.User}}", c.image)); user != "65532:65532" {
		t.Errorf("the image runs as %q, want 65532:65532", user)
	}
	if hc := strings.TrimSpace(c.docker("image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", c.image)); hc != `["CMD","/raftex","health"]` {
		t.Errorf("the image's health check is %s", hc)
	}
	for _, m := range c.nodes {
		poll.Until(t, m.Name+" healthy for Docker", func() error {
			if st := strings.TrimSpace(c.docker("inspect", "--format", "{{.State.Health.Status}}", m.container)); st != "healthy" {
				return fmt.Errorf("health %s", st)
			}
			return nil
		})
		if uid := strings.TrimSpace(c.docker("exec", m.container, "/raftex", "version")); !strings.HasPrefix(uid, "raftex ") {
			t.Errorf("raftex version in %s: %q", m.container, uid)
		}
	}
}
