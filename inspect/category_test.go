package inspect

import (
	"flag"
	"strings"
	"testing"

	"github.com/raftex/raftex/raft"
)

func TestParseCategories(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Categories
	}{
		{"", AllCategories},
		{"all", AllCategories},
		{"state", CategoryState},
		{"state,rpc,commit,snapshot", AllCategories},
		{" RPC , commit ", CategoryRPC | CategoryCommit},
		{"snapshot,all", AllCategories},
	} {
		got, err := ParseCategories(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseCategories(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"stat", "state,,rpc", "heartbeat"} {
		_, err := ParseCategories(bad)
		if err == nil || !strings.Contains(err.Error(), "want state, rpc, commit, snapshot or all") {
			t.Errorf("ParseCategories(%q) error = %v", bad, err)
		}
	}
}

func TestCategoriesString(t *testing.T) {
	for c, want := range map[Categories]string{
		AllCategories:                  "all",
		CategoryRPC | CategorySnapshot: "rpc,snapshot",
		0:                              "",
	} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(c), got, want)
		}
	}
}

func TestCategoriesFlag(t *testing.T) {
	var cs Categories
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(&cs, "events", "event categories")
	if err := fs.Parse([]string{"-events", "state,commit"}); err != nil {
		t.Fatal(err)
	}
	if cs != CategoryState|CategoryCommit {
		t.Errorf("flag parsed %v", cs)
	}
	fs.SetOutput(&strings.Builder{})
	if err := fs.Parse([]string{"-events", "nope"}); err == nil {
		t.Error("unknown category accepted")
	}
}

// TestEveryKindHasCategory: a kind added to raft without a category here
// would vanish from every output.
func TestEveryKindHasCategory(t *testing.T) {
	for k := raft.EventKind(1); !strings.HasPrefix(k.String(), "event("); k++ {
		if CategoryOf(k) == 0 {
			t.Errorf("%v has no category", k)
		}
	}
}

func TestFilter(t *testing.T) {
	app := raft.Event{Kind: raft.EventMessageSent, MsgType: raft.MsgApp}
	hb := raft.Event{Kind: raft.EventMessageSent, MsgType: raft.MsgHeartbeat}
	f := Filter{Categories: AllCategories}
	if !f.Allows(app) {
		t.Error("AppendEntries with no entries must not count as a heartbeat")
	}
	if f.Allows(hb) {
		t.Error("heartbeat allowed without Heartbeats")
	}
	if f.Allows(raft.Event{Kind: 200}) {
		t.Error("an unknown kind has no category and must not pass")
	}
	if (Filter{Categories: CategoryState}).Allows(app) {
		t.Error("rpc event passed a state filter")
	}
}
