package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/raftex/raftex/kv"
	"github.com/raftex/raftex/kvapi"
	"github.com/raftex/raftex/raft"
)

// watches are the simulated watchers (issue 14): each watches a prefix
// through one node's kv.Watcher, as GET /v1/watch does, and, like the Go
// client, reconnects to another node after a crash or at random, resuming
// after the last revision it got (Last-Event-ID); when the node answers
// compacted it lists the prefix (on a node at least as far along, as a
// linearizable list is) and watches on from the listing's revision. Each
// event is checked as it arrives against an oracle: a store that applies
// every entry at its first application anywhere, with an unbounded
// history. A watcher must see exactly the committed changes of its
// prefix, in order, no gaps and no duplicates, across reconnects; a
// listing must be the prefix's committed state at its revision.
type watches struct {
	s      *sim
	rng    *rand.Rand
	oracle *kv.Store
	ow     *kv.Watcher
	// events are the oracle's, every revision that changed keys, in order.
	events []kvapi.Event
	all    []*watcher
}

type watcher struct {
	id     int
	prefix []byte
	// node, store and w: where it is attached (node nil: detached).
	node  *node
	store *kv.Store
	w     *kv.Watcher
	// last is the last revision delivered, or of the last listing.
	last uint64
}

// reconnectEvery is how often a detached watcher tries to attach again,
// and an attached one may move to another node.
const reconnectEvery = 50 * time.Millisecond

// done is a context already ended: Next then polls without waiting.
var done = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

func newWatches(s *sim) *watches {
	ws := &watches{s: s, rng: rand.New(rand.NewPCG(s.opts.Seed, streamWatch))}
	ws.oracle = kv.New(kv.Config{SessionTTL: s.p.sessionTTL, MaxSessions: s.p.maxSessions,
		HistoryCount: 1 << 30, HistoryBytes: 1 << 40})
	ws.ow, _ = ws.oracle.Watch(nil, 1)
	prefixes := []string{"k", "k0", "k1"}
	for i := range s.p.watchers {
		ws.all = append(ws.all, &watcher{id: i + 1, prefix: []byte(prefixes[ws.rng.IntN(len(prefixes))])})
	}
	return ws
}

// start attaches the watchers, from revision 1, and keeps them moving.
func (ws *watches) start() {
	if len(ws.all) == 0 {
		return
	}
	for _, w := range ws.all {
		ws.attach(w)
	}
	var tick func()
	tick = func() {
		for _, w := range ws.all {
			switch {
			case w.node == nil:
				ws.attach(w)
			case ws.rng.IntN(10) == 0: // a client that moves to another node
				ws.detach(w)
				ws.attach(w)
			}
		}
		ws.s.after(reconnectEvery, tick)
	}
	ws.s.after(reconnectEvery, tick)
}

// applied feeds the oracle an entry's first application, and gives the
// watchers of n what n's store now has.
func (ws *watches) applied(n *node, first bool, e raft.Entry) {
	if ws.ow == nil || ws.s.failed() {
		return
	}
	if first {
		ws.oracle.Apply(e)
		for {
			ev, err := ws.ow.Next(done)
			if err != nil {
				break
			}
			ws.events = append(ws.events, ev)
		}
	}
	ws.poll(n)
}

// poll delivers what n's store has for the watchers attached to it.
func (ws *watches) poll(n *node) {
	for _, w := range ws.all {
		if w.node == n {
			ws.deliver(w)
		}
	}
}

func (ws *watches) attach(w *watcher) {
	var live []*node
	for _, n := range ws.s.nodes {
		if n.state == up {
			live = append(live, n)
		}
	}
	if len(live) == 0 {
		return
	}
	n := live[ws.rng.IntN(len(live))]
	kw, err := n.kv.Watch(w.prefix, w.last+1)
	if errors.Is(err, kvapi.ErrCompacted) {
		if !ws.reset(w, n) {
			return
		}
		kw, err = n.kv.Watch(w.prefix, w.last+1)
	}
	if err != nil {
		ws.s.fail("Watch", fmt.Sprintf("watcher %d: watch %q from %d on n%d: %v", w.id, w.prefix, w.last+1, n.id, err))
		return
	}
	w.node, w.store, w.w = n, n.kv, kw
	ws.deliver(w)
}

func (ws *watches) detach(w *watcher) {
	if w.w != nil {
		w.w.Close()
	}
	w.node, w.store, w.w = nil, nil, nil
}

// deliver takes the events the watcher's node has, checking each.
func (ws *watches) deliver(w *watcher) {
	for w.node != nil && !ws.s.failed() {
		if n := w.node; n.state != up || n.kv != w.store {
			ws.detach(w) // the node crashed or restarted: the stream broke
			return
		}
		ev, err := w.w.Next(done)
		switch {
		case errors.Is(err, kvapi.ErrCompacted):
			// A final "compacted" event: list, and watch on from there.
			n := w.node
			ws.detach(w)
			if ws.reset(w, n) {
				ws.attachTo(w, n)
			}
			return
		case err != nil:
			return // nothing more for now
		}
		ws.check(w, ev)
	}
}

func (ws *watches) attachTo(w *watcher, n *node) {
	kw, err := n.kv.Watch(w.prefix, w.last+1)
	if err != nil {
		return // compacted again already: the next tick attaches it
	}
	w.node, w.store, w.w = n, n.kv, kw
}

// check compares an event with the oracle's next change of the prefix
// after the watcher's last revision.
func (ws *watches) check(w *watcher, ev kvapi.Event) {
	want, ok := ws.next(w.prefix, w.last)
	if !ok || want.Revision != ev.Revision || describe(want) != describe(ev) {
		ws.s.fail("Watch", fmt.Sprintf("watcher %d of %q after revision %d got %s, the committed log's next change there is %s",
			w.id, w.prefix, w.last, describe(ev), describeOpt(want, ok)))
		return
	}
	w.last = ev.Revision
	ws.s.stats.Watched++
	ws.s.tr.add(trWatch, uint64(w.id), ev.Revision)
}

// reset lists the prefix on n, as the client does after a 410, if n is
// at least as far along as the watcher (a linearizable list is); the
// listing must be the committed state of the prefix at its revision.
func (ws *watches) reset(w *watcher, n *node) bool {
	if n.kv.AppliedIndex() < w.last {
		return false // try another node later
	}
	page := n.kv.List(w.prefix, kvapi.ListOptions{Limit: kvapi.MaxListLimit})
	want := ws.stateAt(w.prefix, page.Revision)
	var got []string
	for _, kv := range page.KVs {
		got = append(got, string(kv.Key)+"="+string(kv.Value))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		ws.s.fail("Watch", fmt.Sprintf("watcher %d of %q: n%d lists %v at revision %d, the committed state there is %v",
			w.id, w.prefix, n.id, got, page.Revision, want))
		return false
	}
	w.last = page.Revision
	ws.s.stats.WatchResets++
	ws.s.tr.add(trWatch, uint64(w.id), page.Revision, 1)
	return true
}

// next is the oracle's first change of prefix after revision after.
func (ws *watches) next(prefix []byte, after uint64) (kvapi.Event, bool) {
	i := sort.Search(len(ws.events), func(i int) bool { return ws.events[i].Revision > after })
	for ; i < len(ws.events); i++ {
		if ev := filter(ws.events[i], prefix); len(ev.Changes) > 0 {
			return ev, true
		}
	}
	return kvapi.Event{}, false
}

// stateAt is the prefix's committed state at revision rev: its keys and
// values in key order.
func (ws *watches) stateAt(prefix []byte, rev uint64) []string {
	state := map[string]string{}
	for _, ev := range ws.events {
		if ev.Revision > rev {
			break
		}
		for _, c := range filter(ev, prefix).Changes {
			if c.Type == kvapi.ChangeDelete {
				delete(state, string(c.Key))
			} else {
				state[string(c.Key)] = string(c.Value)
			}
		}
	}
	var out []string
	for k, v := range state {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// final checks, once the cluster converged, that every watcher got every
// committed change of its prefix.
func (ws *watches) final() {
	for _, w := range ws.all {
		if w.node == nil {
			ws.attach(w)
		}
		ws.deliver(w)
		if ws.s.failed() {
			return
		}
		if ev, ok := ws.next(w.prefix, w.last); ok {
			ws.s.fail("Watch", fmt.Sprintf("watcher %d of %q never got revision %d (%s) of the committed log",
				w.id, w.prefix, ev.Revision, describe(ev)))
			return
		}
	}
}

func filter(ev kvapi.Event, prefix []byte) kvapi.Event {
	out := kvapi.Event{Revision: ev.Revision}
	for _, c := range ev.Changes {
		if bytes.HasPrefix(c.Key, prefix) {
			out.Changes = append(out.Changes, c)
		}
	}
	return out
}

func describe(ev kvapi.Event) string {
	parts := make([]string, len(ev.Changes))
	for i, c := range ev.Changes {
		parts[i] = fmt.Sprintf("%s %s=%s", c.Type, c.Key, c.Value)
	}
	return fmt.Sprintf("%d [%s]", ev.Revision, strings.Join(parts, ", "))
}

func describeOpt(ev kvapi.Event, ok bool) string {
	if !ok {
		return "none"
	}
	return describe(ev)
}
