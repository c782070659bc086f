package mem_test

import (
	"errors"
	"io"
	"reflect"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
	"github.com/raftex/raftex/transport/internal/fake"
	"github.com/raftex/raftex/transport/mem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster starts nodes 1..n on net with recording handlers, stopped when
// the bubble's test ends.
func cluster(t *testing.T, net *mem.Network, n int) []*fake.Handler {
	t.Helper()
	hs := make([]*fake.Handler, n+1) // by id; 0 unused
	for id := 1; id <= n; id++ {
		hs[id] = fake.NewHandler()
		start(t, net, uint64(id), hs[id], nil)
	}
	return hs
}

func start(t *testing.T, net *mem.Network, id uint64, h transport.Handler, src transport.SnapshotSource) *mem.Transport {
	t.Helper()
	tr := net.Transport(id)
	if err := tr.Start(h, src); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Stop() })
	return tr
}

func hb(from, to, round uint64) raft.Message {
	return raft.Message{Type: raft.MsgHeartbeat, From: from, To: to, Term: 1, ReadRound: round}
}

func rounds(ms []raft.Message) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.ReadRound)
	}
	return out
}

func seq(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i)
	}
	return out
}

func sendN(net *mem.Network, from, to uint64, n int) {
	for i := range n {
		net.Transport(from).Send([]raft.Message{hb(from, to, uint64(i))})
	}
}

// TestDeliver: messages arrive whole, in order, as copies the sender can
// no longer change.
func TestDeliver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		hs := cluster(t, net, 2)
		data := []byte("x=1")
		m := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 2, Index: 3, LogTerm: 1, Commit: 3,
			Entries: []raft.Entry{{Term: 2, Index: 4, Data: data}}, Context: []byte("ctx")}
		net.Transport(1).Send([]raft.Message{m, hb(1, 2, 7)})
		data[0] = 'y'
		synctest.Wait()
		got := hs[2].Messages()
		m.Entries = []raft.Entry{{Term: 2, Index: 4, Data: []byte("x=1")}}
		if want := []raft.Message{m, hb(1, 2, 7)}; !reflect.DeepEqual(got, want) {
			t.Fatalf("delivered %v, want %v", got, want)
		}
		st := net.Transport(1).Stats()
		if st.MessagesSent[raft.MsgApp] != 1 || st.MessagesSent[raft.MsgHeartbeat] != 1 || st.BytesSent == 0 {
			t.Fatalf("sender stats %+v", st)
		}
		if st := net.Transport(2).Stats(); st.MessagesReceived[raft.MsgApp] != 1 || st.BytesReceived == 0 {
			t.Fatalf("receiver stats %+v", st)
		}
	})
}

// TestPartition: nodes in different groups (unlisted nodes form one more
// group) lose their messages, counted as dropped; Heal reconnects them.
func TestPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		hs := cluster(t, net, 3)
		net.Partition([]uint64{1})
		for _, r := range []struct{ from, to uint64 }{{1, 2}, {2, 1}, {2, 3}, {3, 2}, {1, 3}} {
			net.Transport(r.from).Send([]raft.Message{hb(r.from, r.to, 1)})
		}
		synctest.Wait()
		if n1, n2, n3 := len(hs[1].Messages()), len(hs[2].Messages()), len(hs[3].Messages()); n1 != 0 || n2 != 1 || n3 != 1 {
			t.Fatalf("delivered %d, %d, %d; want 0, 1, 1", n1, n2, n3)
		}
		if d := net.Transport(1).Stats().Dropped; d != 2 {
			t.Fatalf("node 1 dropped %d, want 2", d)
		}
		net.Heal()
		net.Transport(1).Send([]raft.Message{hb(1, 2, 2)})
		synctest.Wait()
		if n := len(hs[2].Messages()); n != 2 {
			t.Fatalf("after Heal node 2 has %d messages, want 2", n)
		}
	})
}

// TestPartitionLosesInFlight: a partition drops messages already sent but
// not yet delivered.
func TestPartitionLosesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		hs := cluster(t, net, 2)
		net.SetDelay(10*time.Millisecond, 10*time.Millisecond)
		net.Transport(1).Send([]raft.Message{hb(1, 2, 1)})
		time.Sleep(5 * time.Millisecond)
		net.Partition([]uint64{1}, []uint64{2})
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		if n := len(hs[2].Messages()); n != 0 {
			t.Fatalf("%d messages crossed the partition", n)
		}
	})
}

// TestCutIsOneWay: Cut(1, 2) drops 1→2 but not 2→1.
func TestCutIsOneWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		hs := cluster(t, net, 2)
		net.Cut(1, 2)
		sendN(net, 1, 2, 1)
		sendN(net, 2, 1, 1)
		synctest.Wait()
		if n1, n2 := len(hs[1].Messages()), len(hs[2].Messages()); n1 != 1 || n2 != 0 {
			t.Fatalf("node 1 got %d, node 2 got %d; want 1 and 0", n1, n2)
		}
	})
}

// TestDelay: messages arrive no sooner than the least delay, all by the
// most, and in the order sent.
func TestDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		hs := cluster(t, net, 2)
		net.SetDelay(10*time.Millisecond, 20*time.Millisecond)
		sendN(net, 1, 2, 100)
		time.Sleep(10*time.Millisecond - time.Nanosecond)
		synctest.Wait()
		if n := len(hs[2].Messages()); n != 0 {
			t.Fatalf("%d messages arrived before the least delay", n)
		}
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		if got := rounds(hs[2].Messages()); !slices.Equal(got, seq(100)) {
			t.Fatalf("by the most delay got rounds %v, want all 100 in order", got)
		}
	})
}

// delivered sends n heartbeats 1→2 on a fresh network configured by setup
// and returns the rounds node 2 received.
func delivered(t *testing.T, seed uint64, n int, setup func(*mem.Network)) []uint64 {
	var got []uint64
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(seed)
		hs := cluster(t, net, 2)
		setup(net)
		sendN(net, 1, 2, n)
		time.Sleep(time.Second)
		synctest.Wait()
		got = rounds(hs[2].Messages())
	})
	return got
}

// TestDropRate: about the given share of messages is lost, the same ones
// for the same seed.
func TestDropRate(t *testing.T) {
	drop := func(net *mem.Network) { net.SetDropRate(0.3) }
	got := delivered(t, 7, 1000, drop)
	// 700 expected; 600..800 is more than six standard deviations.
	if len(got) < 600 || len(got) > 800 {
		t.Fatalf("%d of 1000 delivered at drop rate 0.3", len(got))
	}
	if again := delivered(t, 7, 1000, drop); !slices.Equal(again, got) {
		t.Fatalf("the same seed lost different messages")
	}
	if other := delivered(t, 8, 1000, drop); slices.Equal(other, got) {
		t.Fatalf("another seed lost the same messages")
	}
}

// TestDuplicateRate: rate 1 delivers every message twice; a middling rate
// some of them.
func TestDuplicateRate(t *testing.T) {
	if got := delivered(t, 1, 100, func(n *mem.Network) { n.SetDuplicateRate(1) }); len(got) != 200 {
		t.Fatalf("%d deliveries of 100 messages at duplicate rate 1", len(got))
	}
	got := delivered(t, 1, 1000, func(n *mem.Network) { n.SetDuplicateRate(0.2) })
	if len(got) < 1100 || len(got) > 1300 {
		t.Fatalf("%d deliveries of 1000 messages at duplicate rate 0.2", len(got))
	}
}

// TestReorder: with reordering every message still arrives once, but not
// in order; without it, random delays keep the order.
func TestReorder(t *testing.T) {
	inOrder := delivered(t, 1, 200, func(n *mem.Network) { n.SetDelay(0, 5*time.Millisecond) })
	if !slices.Equal(inOrder, seq(200)) {
		t.Fatalf("random delays reordered messages: %v", inOrder)
	}
	got := delivered(t, 1, 200, func(n *mem.Network) { n.SetReorder(0.3, 5*time.Millisecond) })
	if slices.IsSorted(got) {
		t.Fatalf("nothing reordered")
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), seq(200)) {
		t.Fatalf("reordering lost or duplicated messages: %v", got)
	}
}

// TestSnapshot: the body is read from the sender's source into the
// receiver's ReceiveSnapshot, and the outcome reported to the sender.
func TestSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		h1, h2 := fake.NewHandler(), fake.NewHandler()
		start(t, net, 1, h1, fake.Source(func(raft.SnapshotMeta) (io.ReadCloser, int64, error) {
			return fake.NewPattern(3 << 20), 3 << 20, nil
		}))
		start(t, net, 2, h2, nil)
		snap := raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Term: 2,
			Snapshot: &raft.Snapshot{Meta: raft.SnapshotMeta{Index: 9, Term: 2, Membership: raft.NewMembership(1, 2)}}}
		net.Transport(1).Send([]raft.Message{snap})
		synctest.Wait()
		got := h2.Snapshots()
		if len(got) != 1 || got[0].Size != 3<<20 || got[0].Err != nil || !reflect.DeepEqual(got[0].Msg, snap) {
			t.Fatalf("received %+v", got)
		}
		if r := h1.Reports(); !slices.Equal(r, []fake.Report{{ID: 2, OK: true}}) {
			t.Fatalf("reports %v", r)
		}
		if st := net.Transport(1).Stats(); st.BytesSent < 3<<20 {
			t.Fatalf("sender stats %+v", st)
		}
	})
}

// TestSnapshotFailures: a snapshot that is lost, refused or fails to store
// is reported failed.
func TestSnapshotFailures(t *testing.T) {
	snap := raft.Message{Type: raft.MsgSnap, From: 1, To: 2, Snapshot: &raft.Snapshot{Meta: raft.SnapshotMeta{Index: 9}}}
	source := fake.Source(func(raft.SnapshotMeta) (io.ReadCloser, int64, error) { return fake.NewPattern(10), 10, nil })
	tests := []struct {
		name  string
		setup func(t *testing.T, net *mem.Network, h2 *fake.Handler)
	}{
		{"partitioned", func(_ *testing.T, net *mem.Network, _ *fake.Handler) { net.Partition([]uint64{1}) }},
		{"dropped", func(_ *testing.T, net *mem.Network, _ *fake.Handler) { net.SetDropRate(1) }},
		{"receiver down", func(*testing.T, *mem.Network, *fake.Handler) {}},
		{"receiver fails", func(t *testing.T, net *mem.Network, h2 *fake.Handler) {
			h2.OnSnapshot = func(raft.Message, io.Reader) error { return errors.New("disk full") }
			start(t, net, 2, h2, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				net := mem.NewNetwork(1)
				h1, h2 := fake.NewHandler(), fake.NewHandler()
				start(t, net, 1, h1, source)
				tt.setup(t, net, h2)
				net.Transport(1).Send([]raft.Message{snap})
				synctest.Wait()
				if r := h1.Reports(); !slices.Equal(r, []fake.Report{{ID: 2, OK: false}}) {
					t.Fatalf("reports %v, want one failure", r)
				}
			})
		})
	}
}

// TestDownPeerUnreachable: messages to a node that is not started or was
// stopped are dropped and the sender told it is unreachable.
func TestDownPeerUnreachable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		hs := cluster(t, net, 2)
		net.Transport(1).Send([]raft.Message{hb(1, 3, 1)}) // 3 never started
		if err := net.Transport(2).Stop(); err != nil {
			t.Fatal(err)
		}
		net.Transport(1).Send([]raft.Message{hb(1, 2, 1)})
		synctest.Wait()
		if got := slices.Sorted(slices.Values(hs[1].Unreachable())); !slices.Equal(got, []uint64{2, 3}) {
			t.Fatalf("unreachable reports %v, want 2 and 3", got)
		}
		if d := net.Transport(1).Stats().Dropped; d != 2 {
			t.Fatalf("dropped %d, want 2", d)
		}
	})
}

// TestRestart: after Stop, Transport(id) is a new transport for the
// restarted node, and traffic reaches it.
func TestRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		cluster(t, net, 1)
		old := net.Transport(2)
		_ = old.Stop()
		h2 := fake.NewHandler()
		if start(t, net, 2, h2, nil) == old {
			t.Fatal("Transport returned the stopped transport")
		}
		sendN(net, 1, 2, 1)
		synctest.Wait()
		if n := len(h2.Messages()); n != 1 {
			t.Fatalf("restarted node got %d messages", n)
		}
	})
}

// TestRemovePeer: traffic to and from a removed peer is dropped until it
// is added again.
func TestRemovePeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		hs := cluster(t, net, 2)
		net.Transport(2).RemovePeer(1)
		sendN(net, 1, 2, 1)
		sendN(net, 2, 1, 1)
		synctest.Wait()
		if n1, n2 := len(hs[1].Messages()), len(hs[2].Messages()); n1 != 0 || n2 != 0 {
			t.Fatalf("delivered %d and %d messages across a removal", n1, n2)
		}
		net.Transport(2).AddPeer(1, "")
		sendN(net, 1, 2, 1)
		synctest.Wait()
		if n := len(hs[2].Messages()); n != 1 {
			t.Fatalf("after AddPeer node 2 got %d messages", n)
		}
	})
}

// TestQueueFullDrops: a transport not yet started queues what it is sent,
// drops past the queue, and delivers the queue once started.
func TestQueueFullDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		hs := cluster(t, net, 2)
		h3 := fake.NewHandler()
		early := net.Transport(3)
		sendN(net, 3, 2, mem.QueueSize+5)
		if d := early.Stats().Dropped; d != 5 {
			t.Fatalf("dropped %d, want 5", d)
		}
		start(t, net, 3, h3, nil)
		synctest.Wait()
		if n := len(hs[2].Messages()); n != mem.QueueSize {
			t.Fatalf("delivered %d, want the %d queued", n, mem.QueueSize)
		}
	})
}

// blocking is a Handler whose Deliver blocks until released.
type blocking struct {
	*fake.Handler
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) Deliver(m raft.Message) {
	close(b.entered)
	<-b.release
	b.Handler.Deliver(m)
}

// TestStopWaitsForHandler: Stop returns only once a Handler call in
// progress (made by another transport's goroutine) has returned, and no
// call is made after.
func TestStopWaitsForHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		cluster(t, net, 1)
		h2 := &blocking{Handler: fake.NewHandler(), entered: make(chan struct{}), release: make(chan struct{})}
		start(t, net, 2, h2, nil)
		sendN(net, 1, 2, 1)
		<-h2.entered
		var stopped sync.WaitGroup
		returned := false
		stopped.Go(func() { _ = net.Transport(2).Stop(); returned = true })
		synctest.Wait()
		if returned {
			t.Fatal("Stop returned during a Handler call")
		}
		close(h2.release)
		stopped.Wait()
		sendN(net, 1, 2, 1)
		synctest.Wait()
		if n := len(h2.Messages()); n != 1 {
			t.Fatalf("%d messages delivered, want only the one before Stop", n)
		}
	})
}

// TestStopUnderLoad: nodes flooding each other all stop at once without
// deadlock or a leftover goroutine (synctest fails the test on either).
func TestStopUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		cluster(t, net, 3)
		net.SetDelay(0, time.Millisecond)
		net.SetDuplicateRate(0.5)
		var wg sync.WaitGroup
		for from := uint64(1); from <= 3; from++ {
			wg.Go(func() {
				for i := range 2000 {
					for to := uint64(1); to <= 3; to++ {
						if to != from {
							net.Transport(from).Send([]raft.Message{hb(from, to, uint64(i))})
						}
					}
				}
			})
		}
		time.Sleep(500 * time.Microsecond)
		for id := uint64(1); id <= 3; id++ {
			wg.Go(func() { _ = net.Transport(id).Stop() })
		}
		wg.Wait()
	})
}

func TestLifecycleErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := mem.NewNetwork(1)
		tr := net.Transport(1)
		if err := tr.Start(nil, nil); err == nil {
			t.Error("Start with a nil Handler succeeded")
		}
		h := fake.NewHandler()
		if err := tr.Start(h, nil); err != nil {
			t.Fatal(err)
		}
		if err := tr.Start(h, nil); !errors.Is(err, transport.ErrStarted) {
			t.Errorf("second Start: %v", err)
		}
		_ = tr.Stop()
		if err := tr.Stop(); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		if err := tr.Start(h, nil); !errors.Is(err, transport.ErrStopped) {
			t.Errorf("Start after Stop: %v", err)
		}
	})
}
