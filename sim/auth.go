package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/internal/kvmodel"
)

// adminScript is what the administrator of an auth run does, while the
// clients run: add root and a user per client, with a role that reads and
// writes every key the clients use ("k..."), then enable auth. The token
// key comes from the seed.
func adminScript(s *sim, rng *rand.Rand) []auth.Change {
	key := make([]byte, auth.KeySize)
	for i := range key {
		key[i] = byte(rng.Uint32())
	}
	script := []auth.Change{
		{Kind: auth.AddUser, Name: "root", Hash: []byte(simHash)},
		{Kind: auth.GrantRole, Name: "root", Role: auth.RootRole},
		{Kind: auth.AddRole, Name: "rw"},
		{Kind: auth.GrantPermission, Name: "rw", Perm: auth.Permission{Prefix: "k", Access: auth.ReadWrite}},
	}
	for i := range s.p.clients {
		name := fmt.Sprintf("c%d", i+1)
		script = append(script,
			auth.Change{Kind: auth.AddUser, Name: name, Hash: []byte(simHash)},
			auth.Change{Kind: auth.GrantRole, Name: name, Role: "rw"})
	}
	return append(script, auth.Change{Kind: auth.Enable, Key: key})
}

// nextChange starts the administrator's next auth change, if any is left.
func (c *client) nextChange() {
	if len(c.script) == 0 {
		return
	}
	ch := c.script[0]
	c.op = &clientOp{c: c, Input: kvmodel.Input{Kind: kvmodel.Put}, change: &ch, call: c.s.now}
	c.attempt()
}

// changed takes the state machine's answer to an auth change: done, or
// (an earlier attempt of it applied) the user or role is there already.
func (c *client) changed(rep reply) {
	if rep.err != nil && !errors.Is(rep.err, auth.ErrUserExists) && !errors.Is(rep.err, auth.ErrRoleExists) {
		c.s.fail("Auth", fmt.Sprintf("the administrator's %v was refused: %v", c.op, rep.err))
		return
	}
	c.op.done = true
	c.op = nil
	c.hint = rep.from
	c.script = c.script[1:]
	if !c.s.clients.stopped {
		c.nextChange() // no think time: the clients run meanwhile
	}
}
