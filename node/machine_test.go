package node

import (
	"fmt"
	"strings"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/storage"
	"github.com/raftex/raftex/storage/vfs"
)

// recordEnv is a Machine's world that notes what it was asked, in order:
// it writes to the store at once, but the write completes (WriteDone)
// only when the test says.
type recordEnv struct {
	st  *storage.Store
	log []string
}

func (e *recordEnv) Write(rd raft.Ready) {
	e.log = append(e.log, fmt.Sprintf("write %d entries", len(rd.Entries)))
	if err := e.st.Save(rd.HardState, rd.Entries); err != nil {
		panic(err)
	}
}
func (e *recordEnv) Send([]raft.Message) {}
func (e *recordEnv) Apply(t ApplyTask) {
	for _, ent := range t.Entries {
		if ent.Type == raft.EntryNormal {
			e.log = append(e.log, "apply "+string(ent.Data))
		}
	}
}
func (e *recordEnv) Ready(*raft.Ready) {}
func (e *recordEnv) Event(raft.Event)  {}
func (e *recordEnv) ConfChanged(m raft.Membership, committed bool) {
	e.log = append(e.log, fmt.Sprintf("conf %v committed=%t", m, committed))
}
func (e *recordEnv) String() string { return strings.Join(e.log, "; ") }
func (e *recordEnv) reset()         { e.log = nil }
func newRecordMachine(t *testing.T) (*Machine, *recordEnv) {
	t.Helper()
	st, err := storage.Open(vfs.NewMem(), "/data", storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := DefaultConfig(1)
	cfg.InitialMembership = raft.NewMembership(1)
	env := &recordEnv{st: st}
	m, _, err := NewMachine(&cfg, st, &logFSM{}, env, func(raft.Event) {})
	if err != nil {
		t.Fatal(err)
	}
	return m, env
}

// Ready rule 1: committed entries are durable before they are handed out,
// so the Machine applies them at once, while the next batch is being
// written, instead of after that write: a busy node applies one batch
// while it writes the next.
func TestMachineAppliesCommittedEntriesWhileWritingTheNext(t *testing.T) {
	m, env := newRecordMachine(t)
	m.Raft().Campaign() // a single voter leads at once
	m.Process()
	if err := m.WriteDone(nil); err != nil { // its term and no-op
		t.Fatal(err)
	}
	m.Process()
	m.Propose(&Proposal{Data: []byte("a"), Done: func(any, error) {}})
	m.Process()
	if err := m.WriteDone(nil); err != nil { // a is durable and committed
		t.Fatal(err)
	}
	env.reset()
	m.Propose(&Proposal{Data: []byte("b"), Done: func(any, error) {}})
	m.Process()
	if got, want := env.String(), "apply a; write 1 entries"; got != want {
		t.Fatalf("while b is written: %q, want %q", got, want)
	}
}
