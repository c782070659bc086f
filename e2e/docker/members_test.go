package docker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/raftex/raftex/internal/e2etest"
)

// TestDockerMemberReplacement replaces a dead node under the workload, as
// docs/operations.md says: n3's container is killed for good, n3 removed
// through a survivor (the root user: auth is on), and a new container n4
// joins with `serve --join http://n1:8000` and the root user's
// credentials; once a voter it carries the cluster with the others, and
// the history checks out.
func TestDockerMemberReplacement(t *testing.T) {
	c := newCluster(t)
	w := startWorkload(t, c)
	w.WaitWrites(50, "before the fault")
	n3 := c.nodes[2]
	c.kill(n3)
	w.WaitWrites(30, "n3 down")
	r, err := e2etest.Do(probe, http.MethodDelete, c.nodes[0].URL("/v1/members/n3"), nil)
	if err != nil || r.Code != http.StatusOK {
		t.Fatalf("removing n3 through n1: %d %s (%v)", r.Code, r.Body, err)
	}
	c.docker("rm", "-f", "-v", n3.container)
	c.nodes = c.nodes[:2]

	n4 := newMember(4, ports.Free(t, 1)[0])
	n4.container, n4.ip = c.prefix+"-n4", c.hostAddr(14)
	c.nodes = append(c.nodes, n4) // cleanup removes it
	n4.Scheme = "https"
	args := []string{"create", "--name", n4.container, "--label", labelRun + "=" + runID, "--label", labelPID + "=" + strconv.Itoa(os.Getpid()),
		"--network", c.clientNet, "--publish", n4.ClientAddr + ":8000",
		"--env", "RAFTEX_PASSWORD=" + rootPassword}
	args = append(append(args, tlsEnv("n4")...), c.image, "serve", "--id", "n4", "--data-dir", "/data",
		"--peer-addr", "n4:7000", "--client-addr", "0.0.0.0:8000",
		"--join", "https://n1:8000", "--user", "root",
		"--request-timeout", requestTimeout.String(), "--token-ttl", tokenTTL.String())
	c.docker(args...)
	c.docker("cp", certDir+"/.", n4.container+":/certs")
	c.connect(n4)
	c.start(n4)
	poll.Until(t, "n4 is a voter on every node", func() error {
		for _, m := range c.nodes {
			r, err := m.Get("/v1/members")
			if err != nil {
				return err
			}
			var body struct {
				Members []struct {
					ID    string `json:"id"`
					Voter bool   `json:"voter"`
				} `json:"members"`
			}
			if err := json.Unmarshal(r.Body, &body); err != nil {
				return fmt.Errorf("%s: %d %s", m.Name, r.Code, r.Body)
			}
			var voters []string
			for _, mm := range body.Members {
				if mm.Voter {
					voters = append(voters, mm.ID)
				}
			}
			if !slices.Equal(voters, []string{"n1", "n2", "n4"}) {
				return fmt.Errorf("%s lists voters %v", m.Name, voters)
			}
		}
		return nil
	})
	w.WaitWrites(30, "n4 a voter")
	// n4 counts: with n1 down, n2 and n4 are the quorum.
	n1 := c.nodes[0]
	c.kill(n1)
	c.leader(c.others(n1)...)
	w.WaitWrites(30, "n1 down, n2 and n4 commit")
	c.start(n1)
	c.check(w)
}
