package mem

import (
	"container/heap"
	"context"
	"errors"
	"io"
	"time"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

// errDown is the failure of a snapshot to a node that is down.
var errDown = errors.New("mem: peer is down")

// link carries messages from one transport to one destination.
type link struct {
	to     uint64
	queue  chan envelope
	ctx    context.Context // canceled by RemovePeer and Stop
	cancel context.CancelFunc
}

// envelope is a message in flight: its encoding and when to deliver it.
type envelope struct {
	payload []byte
	at      time.Time
	seq     uint64 // arrival order on the link, to break ties in at
}

// inFlight orders envelopes by delivery time, then arrival.
type inFlight []envelope

func (q inFlight) Len() int { return len(q) }
func (q inFlight) Less(i, j int) bool {
	return q[i].at.Before(q[j].at) || (q[i].at.Equal(q[j].at) && q[i].seq < q[j].seq)
}
func (q inFlight) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *inFlight) Push(x any)   { *q = append(*q, x.(envelope)) }
func (q *inFlight) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// runLink is a link goroutine: it takes envelopes off the queue, holds
// each until its delivery time and delivers it. It returns when the link
// is canceled; what is still in flight is lost.
func (t *Transport) runLink(l *link) {
	var pending inFlight
	var seq uint64
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		for len(pending) > 0 && !pending[0].at.After(now) {
			t.deliver(l.to, heap.Pop(&pending).(envelope))
		}
		var wake <-chan time.Time
		if len(pending) > 0 {
			timer.Reset(pending[0].at.Sub(now))
			wake = timer.C
		} else {
			timer.Stop()
		}
		select {
		case <-l.ctx.Done():
			return
		case e := <-l.queue:
			seq++
			e.seq = seq
			heap.Push(&pending, e)
		case <-wake:
		}
	}
}

// deliver hands one envelope to its destination, or counts it lost.
func (t *Transport) deliver(to uint64, e envelope) {
	m, err := transport.DecodeMessage(e.payload)
	if err != nil {
		panic("mem: cannot decode what this package encoded: " + err.Error())
	}
	r, lost := t.net.reach(t.id, to)
	switch {
	case lost:
		t.stats.Dropped(1)
		if m.Type == raft.MsgSnap {
			t.h.ReportSnapshot(to, false)
		}
	case m.Type == raft.MsgSnap:
		t.wg.Go(func() { t.h.ReportSnapshot(to, t.sendSnapshot(r, m, len(e.payload)) == nil) })
	case r == nil || !r.receive(m, len(e.payload)):
		t.stats.Dropped(1)
		t.h.ReportUnreachable(to)
	}
}

// receive delivers m to the Handler, unless the node is down or refuses
// m's sender.
func (r *Transport) receive(m raft.Message, size int) bool {
	h, ok := r.enter(m.From)
	if !ok {
		return false
	}
	defer r.calls.Done()
	r.stats.Received(m.Type, size)
	h.Deliver(m)
	return true
}

// sendSnapshot runs on a snapshot goroutine: it opens the body from this
// node's SnapshotSource and hands it to r's ReceiveSnapshot.
func (t *Transport) sendSnapshot(r *Transport, m raft.Message, size int) error {
	if r == nil {
		t.h.ReportUnreachable(m.To)
		return errDown
	}
	if t.src == nil {
		return errors.New("mem: no SnapshotSource to read the snapshot from")
	}
	body, _, err := t.src.OpenSnapshot(m.Snapshot.Meta)
	if err != nil {
		return err
	}
	defer body.Close()
	h, ok := r.enter(m.From)
	if !ok {
		t.h.ReportUnreachable(m.To)
		return errDown
	}
	defer r.calls.Done()
	r.stats.Received(m.Type, size)
	counted := &counter{r: body}
	err = h.ReceiveSnapshot(m, counted)
	t.stats.SentBytes(int(counted.n))
	r.stats.ReceivedBytes(int(counted.n))
	return err
}

// counter counts the bytes read through it.
type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
