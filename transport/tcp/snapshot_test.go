package tcp_test

import (
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport/internal/fake"
)

func snapMsg(from, to uint64) raft.Message {
	return raft.Message{Type: raft.MsgSnap, From: from, To: to, Term: 3, Snapshot: &raft.Snapshot{
		Meta: raft.SnapshotMeta{Index: 1000, Term: 3, Membership: raft.NewMembership(1, 2)},
	}}
}

// patternSource serves every snapshot as a generated body of size bytes
// and hands the body to bodies, so the test can see how much was read.
func patternSource(size int64, bodies chan<- *fake.Pattern) fake.Source {
	return func(raft.SnapshotMeta) (io.ReadCloser, int64, error) {
		p := fake.NewPattern(size)
		if bodies != nil {
			bodies <- p
		}
		return p, size, nil
	}
}

// kernelBuffers is the most a loopback connection can hold in flight: the
// largest receive and send socket buffers the kernel allows.
func kernelBuffers(t *testing.T) int64 {
	var total int64
	for _, f := range []string{"/proc/sys/net/ipv4/tcp_rmem", "/proc/sys/net/ipv4/tcp_wmem"} {
		b, err := os.ReadFile(f)
		fields := strings.Fields(string(b))
		if err != nil || len(fields) != 3 {
			t.Logf("cannot read %s (%v); assuming 32 MiB", f, err)
			total += 32 << 20
			continue
		}
		n, _ := strconv.ParseInt(fields[2], 10, 64)
		total += n
	}
	return total
}

// TestLargeSnapshotStreams: a 64 MiB snapshot, generated as it is read and
// never held in memory, streams to the peer while heartbeats keep
// arriving. The receiver stops reading 8 MiB in and carries on only once
// heartbeats sent after that point have been delivered, so heartbeats
// stuck behind the snapshot would hang the test; while it waits, the
// sender must not have read further ahead than the kernel's socket
// buffers (plus two chunks), so the body was paced by flow control and
// never buffered whole.
func TestLargeSnapshotStreams(t *testing.T) {
	leakCheck(t)
	const size, pause = 64 << 20, 8 << 20
	a, b := newNode(t, config(1, "c")), newNode(t, config(2, "c"))
	a.tr.AddPeer(2, b.tr.Addr())
	b.tr.AddPeer(1, a.tr.Addr())

	halfway, resume := make(chan struct{}), make(chan struct{})
	var received fake.Checker
	b.h.OnSnapshot = func(m raft.Message, body io.Reader) error {
		if m.Snapshot.Meta.Index != 1000 || m.From != 1 {
			return errors.New("wrong snapshot message")
		}
		if _, err := io.CopyN(&received, body, pause); err != nil {
			return err
		}
		close(halfway)
		<-resume
		_, err := io.Copy(&received, body)
		return err
	}
	bodies := make(chan *fake.Pattern, 1)
	a.start(t, patternSource(size, bodies))
	b.start(t, nil)

	a.tr.Send([]raft.Message{snapMsg(1, 2)})
	<-halfway
	body := <-bodies
	for round := range uint64(10) {
		a.tr.Send([]raft.Message{heartbeat(1, 2, round)})
	}
	b.h.Wait(t, "heartbeats during the snapshot", func() bool { return countFrom(b.h, 1) == 10 })
	lead := body.Produced() - pause
	if limit := kernelBuffers(t) + 2*256<<10; lead > limit {
		t.Errorf("sender read %d bytes ahead of the receiver, more than the %d the connection can hold", lead, limit)
	}
	t.Logf("sender %d MiB ahead of the receiver while it paused", lead>>20)
	close(resume)

	a.h.Wait(t, "the snapshot report", func() bool { return len(a.h.Reports()) == 1 })
	if r := a.h.Reports()[0]; r != (fake.Report{ID: 2, OK: true}) {
		t.Fatalf("report %+v, want success for 2", r)
	}
	if received.Written != size {
		t.Fatalf("received %d bytes, want %d", received.Written, size)
	}
	if st := a.tr.Stats(); st.MessagesSent[raft.MsgSnap] != 1 || st.BytesSent < size {
		t.Fatalf("sender stats %+v", st)
	}
	if st := b.tr.Stats(); st.MessagesReceived[raft.MsgSnap] != 1 || st.BytesReceived < size {
		t.Fatalf("receiver stats %+v", st)
	}
}

// TestSnapshotFailures: every way a snapshot can fail ends in
// ReportSnapshot(peer, false), and the next one can succeed.
func TestSnapshotFailures(t *testing.T) {
	tests := []struct {
		name    string
		src     fake.Source
		receive func(m raft.Message, body io.Reader) error
	}{
		{"source cannot open", func(raft.SnapshotMeta) (io.ReadCloser, int64, error) {
			return nil, 0, errors.New("no such snapshot")
		}, nil},
		{"body shorter than its size", func(raft.SnapshotMeta) (io.ReadCloser, int64, error) {
			return fake.NewPattern(1000), 2000, nil
		}, nil},
		{"handler fails", patternSource(3<<20, nil), func(_ raft.Message, body io.Reader) error {
			_, _ = io.CopyN(io.Discard, body, 1<<20)
			return errors.New("disk full")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leakCheck(t)
			a, b := newNode(t, config(1, "c")), newNode(t, config(2, "c"))
			a.tr.AddPeer(2, b.tr.Addr())
			b.tr.AddPeer(1, a.tr.Addr())
			var failing atomic.Bool
			failing.Store(true)
			b.h.OnSnapshot = func(m raft.Message, body io.Reader) error {
				if failing.Load() && tt.receive != nil {
					return tt.receive(m, body)
				}
				_, err := fake.CheckPattern(body)
				return err
			}
			a.start(t, fake.Source(func(meta raft.SnapshotMeta) (io.ReadCloser, int64, error) {
				if failing.Load() {
					return tt.src(meta)
				}
				return patternSource(1<<20, nil)(meta)
			}))
			b.start(t, nil)

			a.tr.Send([]raft.Message{snapMsg(1, 2)})
			a.h.Wait(t, "a report", func() bool { return len(a.h.Reports()) == 1 })
			if r := a.h.Reports()[0]; r.OK {
				t.Fatalf("report %+v, want failure", r)
			}
			failing.Store(false)
			a.tr.Send([]raft.Message{snapMsg(1, 2)})
			a.h.Wait(t, "a second report", func() bool { return len(a.h.Reports()) == 2 })
			if r := a.h.Reports()[1]; !r.OK {
				t.Fatalf("second report %+v, want success", r)
			}
		})
	}
}

// TestHandlerStopsReadingEarly: a handler that returns success without
// reading the whole body (it had the snapshot already) succeeds.
func TestHandlerStopsReadingEarly(t *testing.T) {
	leakCheck(t)
	a, b := newNode(t, config(1, "c")), newNode(t, config(2, "c"))
	a.tr.AddPeer(2, b.tr.Addr())
	b.tr.AddPeer(1, a.tr.Addr())
	b.h.OnSnapshot = func(raft.Message, io.Reader) error { return nil }
	a.start(t, patternSource(5<<20, nil))
	b.start(t, nil)
	a.tr.Send([]raft.Message{snapMsg(1, 2)})
	a.h.Wait(t, "the report", func() bool { return len(a.h.Reports()) == 1 })
	if r := a.h.Reports()[0]; !r.OK {
		t.Fatalf("report %+v, want success", r)
	}
}
