package node

import (
	"errors"
	"fmt"
	"io"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/transport"
)

// handler is the node as the transport sees it.
type handler struct{ n *Node }

var _ transport.Handler = handler{}

// Deliver queues an inbound message for the core goroutine; on a full
// inbox the message is dropped and counted (Raft tolerates loss).
func (h handler) Deliver(m raft.Message) {
	select {
	case h.n.inbox <- m:
	default:
		h.n.dropped.Add(1)
	}
}

// ReceiveSnapshot stores a snapshot body streamed from the leader, then
// hands the InstallSnapshot message to the core (§7). The core decides
// whether to install it; the file is kept either way and pruned with the
// other snapshots.
func (h handler) ReceiveSnapshot(m raft.Message, body io.Reader) error {
	if m.Snapshot == nil {
		return fmt.Errorf("node: InstallSnapshot from %d without metadata", m.From)
	}
	if err := StoreSnapshot(h.n.store, m, body); err != nil {
		return err
	}
	h.Deliver(m)
	return nil
}

// StoreSnapshot stores the body of the InstallSnapshot m before m goes to
// the core, which decides whether to install it (§7). A body older than a
// snapshot the store holds is not stored, but m must still reach the
// core: it answers with its commit index, the only way the leader learns
// to stop sending it (simulator seed 102077).
func StoreSnapshot(store *storage.Store, m raft.Message, body io.Reader) error {
	w, err := store.CreateSnapshot(m.Snapshot.Meta)
	if errors.Is(err, raft.ErrSnapshotOutOfDate) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, body); err != nil {
		w.Abort()
		return fmt.Errorf("node: receiving snapshot %d from %d: %w", m.Snapshot.Meta.Index, m.From, err)
	}
	return w.Commit()
}

// ReportUnreachable and ReportSnapshot run on the core goroutine; they
// wait for room in its control queue unless the node is stopping.
func (h handler) ReportUnreachable(id uint64) {
	h.n.control(func(r *raft.Raft) { r.ReportUnreachable(id) })
}

func (h handler) ReportSnapshot(id uint64, ok bool) {
	h.n.control(func(r *raft.Raft) { r.ReportSnapshot(id, ok) })
}

func (n *Node) control(f func(*raft.Raft)) {
	select {
	case n.ctrlc <- func(m *Machine) { f(m.Raft()) }:
	case <-n.coreDone:
	}
}
