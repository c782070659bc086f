package node

import (
	"fmt"
	"testing"
	"time"
)

func TestSmokeTCP(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader(5 * time.Second)
	for i := range 100 {
		if err := c.propose(lead, fmt.Sprint("cmd", i)); err != nil {
			t.Fatal(err)
		}
	}
	n, _ := c.waitConverged(5 * time.Second)
	if n != 100 {
		t.Fatalf("applied %d", n)
	}
}
