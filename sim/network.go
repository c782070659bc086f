package sim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

// network moves messages between nodes. Each message is encoded with the
// wire codec of package transport when sent and decoded on arrival, so
// nodes never share memory and the codec is exercised with every
// message. Links are FIFO (like the TCP transport's one stream per peer)
// except for the faults: drop, duplicate, delay, reorder, and partitions
// that cut links in one or both directions.
//
// InstallSnapshot bodies travel out of band, as with the TCP transport:
// read from the sender's snapshot file when sent, stored in the receiver's
// snapshot directory on arrival, and the end of the transfer reported to
// the sender's core (ReportSnapshot), which waits for it (§7).
type network struct {
	s   *sim
	rng *rand.Rand
	// cut[from][to]: messages on that link are lost.
	cut [][]bool
	// last[from][to]: the arrival time of the last FIFO message on that
	// link; the next one arrives no earlier.
	last [][]time.Duration
}

// envelope is a message in flight: its encoding and, for InstallSnapshot,
// the snapshot body.
type envelope struct {
	from, to uint64
	typ      raft.MessageType
	data     []byte
	body     []byte
}

func newNetwork(s *sim, n int) *network {
	nw := &network{s: s, rng: rand.New(rand.NewPCG(s.opts.Seed, streamNet))}
	nw.cut = make([][]bool, n+1)
	nw.last = make([][]time.Duration, n+1)
	for i := range nw.cut {
		nw.cut[i] = make([]bool, n+1)
		nw.last[i] = make([]time.Duration, n+1)
	}
	return nw
}

// heal restores every link.
func (nw *network) heal() {
	for _, row := range nw.cut {
		clear(row)
	}
}

// send puts m on the wire. The sender has just made it leave.
func (nw *network) send(m raft.Message) {
	s := nw.s
	s.chk.sent(s.node(m.From), m)
	s.stats.Messages++
	s.tr.add(trSend, uint64(m.Type), m.From, m.To, m.Term, m.Index, m.Commit, uint64(len(m.Entries)))
	to := s.node(m.To)
	if nw.cut[m.From][m.To] || to.state == down {
		// The transport cannot reach the peer and says so.
		nw.lost(m, "unreachable")
		s.later(0, m.From, func(n *node) {
			n.core.ReportUnreachable(m.To)
			if m.Type == raft.MsgSnap {
				n.core.ReportSnapshot(m.To, false)
			}
		})
		return
	}
	f := s.msgFaults()
	if f.Drop > 0 && nw.rng.Float64() < f.Drop {
		s.stats.FaultsInjected++
		nw.lose(m, "dropped")
		return
	}
	env := &envelope{from: m.From, to: m.To, typ: m.Type, data: transport.AppendMessage(nil, m)}
	if m.Type == raft.MsgSnap {
		body, err := nw.readBody(s.node(m.From), m.Snapshot.Meta.Index)
		if err != nil {
			nw.lose(m, "snapshot unreadable: "+err.Error())
			return
		}
		env.body = body
	}
	at := nw.arrival(m.From, m.To, f)
	if s.tr.on() {
		s.tr.printf(s.now, "send    %v (arrives +%v)", m, at-s.now)
	}
	s.at(at, func() { nw.deliver(env) })
	if f.Dup > 0 && nw.rng.Float64() < f.Dup {
		s.stats.FaultsInjected++
		dup := s.now + nw.latency() + time.Duration(nw.rng.Int64N(int64(100*time.Millisecond)))
		s.at(dup, func() { nw.deliver(env) })
	}
}

// arrival draws when a message sent now on from→to arrives.
func (nw *network) arrival(from, to uint64, f Faults) time.Duration {
	at := nw.s.now + nw.latency()
	if f.Delay > 0 && nw.rng.Float64() < f.Delay {
		nw.s.stats.FaultsInjected++
		at += 5*time.Millisecond + time.Duration(nw.rng.Int64N(int64(295*time.Millisecond)))
	}
	if f.Reorder > 0 && nw.rng.Float64() < f.Reorder {
		// Out of the link's order: it may overtake earlier messages and
		// be overtaken by later ones.
		nw.s.stats.FaultsInjected++
		return at + time.Duration(nw.rng.Int64N(int64(50*time.Millisecond)))
	}
	at = max(at, nw.last[from][to])
	nw.last[from][to] = at
	return at
}

func (nw *network) latency() time.Duration {
	p := nw.s.p
	return p.latencyMin + time.Duration(nw.rng.Int64N(int64(p.latencyMax-p.latencyMin)+1))
}

// readBody reads a snapshot body from the sender's store.
func (nw *network) readBody(from *node, index uint64) ([]byte, error) {
	_, rc, _, err := from.store.OpenSnapshot(index)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// lose drops m; a lost snapshot is reported to its sender.
func (nw *network) lose(m raft.Message, why string) {
	nw.lost(m, why)
	if m.Type == raft.MsgSnap {
		nw.reportSnapshot(m.From, m.To, false)
	}
}

func (nw *network) lost(m raft.Message, why string) {
	s := nw.s
	s.tr.add(trLost, uint64(m.Type), m.From, m.To, m.Term)
	if s.tr.on() {
		s.tr.printf(s.now, "lost    %v (%s)", m, why)
	}
}

// deliver hands a message that arrives now to its destination.
func (nw *network) deliver(env *envelope) {
	s := nw.s
	m, err := transport.DecodeMessage(env.data)
	if err != nil {
		s.fail("Codec", fmt.Sprintf("cannot decode a message of %d bytes the codec encoded: %v", len(env.data), err))
		return
	}
	to := s.node(env.to)
	if nw.cut[env.from][env.to] || to.state == down {
		nw.lose(m, "link cut or node down on arrival")
		return
	}
	s.tr.add(trDeliver, uint64(m.Type), m.From, m.To, m.Term, m.Index)
	if s.tr.on() {
		s.tr.printf(s.now, "deliver %v", m)
	}
	to.inputFrom(fromPeer, func() { to.receive(m, env.body) })
}

// reportSnapshot tells the sender's core how a snapshot transfer ended.
func (nw *network) reportSnapshot(from, to uint64, ok bool) {
	nw.s.later(nw.latency(), from, func(n *node) { n.core.ReportSnapshot(to, ok) })
}
