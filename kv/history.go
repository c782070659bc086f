package kv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/raftex/raftex/kvapi"
)

// Defaults of the watch history (per node, not replicated).
const (
	// DefaultHistoryCount is how many revisions that changed keys a node
	// keeps for watches.
	DefaultHistoryCount = 10_000
	// DefaultHistoryBytes bounds the keys and values those revisions hold.
	DefaultHistoryBytes = 64 << 20
	// DefaultMaxWatchers bounds the watchers open at once on a node.
	DefaultMaxWatchers = 10_000
	// changeOverhead is what a change costs besides its key and value.
	changeOverhead = 64
)

// ErrTooManyWatchers is returned by Watch beyond Config.MaxWatchers.
var ErrTooManyWatchers = errors.New("kv: too many watchers on this node")

// event is the changes of one revision.
type event struct {
	rev     uint64
	changes []kvapi.Change
	size    int
}

// history is the bounded record of the changes this node applied, oldest
// first, for watches (DESIGN.md "The store"): a watch resumes from any
// revision after compact. It is this node's own, not replicated state:
// it starts empty (compact is the snapshot's index) on every start.
type history struct {
	maxCount, maxBytes int
	events             []event
	bytes              int
	// compact: the changes of revisions up to compact are forgotten.
	compact uint64
	// reason says why compact last moved.
	reason string
	// changed is closed, and replaced, when an event is recorded or the
	// history is compacted: watchers wait on it.
	changed chan struct{}
}

func newHistory(maxCount, maxBytes int) history {
	return history{maxCount: maxCount, maxBytes: maxBytes, changed: make(chan struct{})}
}

// record appends the changes of revision rev, forgetting the oldest
// revisions beyond the bounds (the newest one always stays).
func (h *history) record(rev uint64, changes []kvapi.Change) {
	if len(changes) == 0 {
		return
	}
	ev := event{rev: rev, changes: changes}
	for _, c := range changes {
		ev.size += changeOverhead + len(c.Key) + len(c.Value)
	}
	h.events = append(h.events, ev)
	h.bytes += ev.size
	drop := 0
	for len(h.events)-drop > 1 && (len(h.events)-drop > h.maxCount || h.bytes > h.maxBytes) {
		h.bytes -= h.events[drop].size
		h.compact = h.events[drop].rev
		drop++
	}
	if drop > 0 {
		h.reason = fmt.Sprintf("the node keeps the changes of %d revisions (%d bytes) at most", h.maxCount, h.maxBytes)
		clear(h.events[:drop])
		h.events = h.events[drop:]
		if cap(h.events) > 2*len(h.events)+64 { // let go of the dropped array
			h.events = append([]event(nil), h.events...)
		}
	}
	h.wake()
}

// skipTo forgets everything up to rev: the node installed a snapshot, and
// skipped the changes between its state and the snapshot's.
func (h *history) skipTo(rev uint64) {
	clear(h.events)
	h.events, h.bytes = nil, 0
	h.compact = max(h.compact, rev)
	h.reason = "the node installed a snapshot that skips changes"
	h.wake()
}

func (h *history) wake() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// CompactRevision returns the revision up to which this node forgot the
// changes: a watch may start at CompactRevision()+1 at the earliest.
func (s *Store) CompactRevision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.hist.compact
}

// Watcher delivers the changes of the keys under a prefix, one revision
// at a time, from this node's history. It holds no queue of its own: it
// reads the shared, bounded history at its position, so a slow watcher
// costs no memory; it falls behind the history instead and is told so
// (a *kvapi.CompactedError). Close it when done.
type Watcher struct {
	s      *Store
	prefix []byte
	// exact: only the key prefix itself (WatchKey).
	exact bool
	// next is the first revision not yet delivered.
	next   uint64
	closed bool
}

// Watch starts a watcher of the keys under prefix (every key for an empty
// one) from revision from (the first revision it delivers; from 0 is 1).
// It returns a *kvapi.CompactedError when the history no longer holds
// from, and ErrTooManyWatchers beyond Config.MaxWatchers.
func (s *Store) Watch(prefix []byte, from uint64) (*Watcher, error) {
	return s.watch(prefix, false, from)
}

// WatchKey is Watch of one key.
func (s *Store) WatchKey(key []byte, from uint64) (*Watcher, error) {
	return s.watch(key, true, from)
}

func (s *Store) watch(prefix []byte, exact bool, from uint64) (*Watcher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from = max(from, 1)
	if from <= s.hist.compact {
		return nil, &kvapi.CompactedError{CompactRevision: s.hist.compact, Reason: s.hist.reason}
	}
	if s.watchers >= s.cfg.MaxWatchers {
		return nil, fmt.Errorf("%w (%d)", ErrTooManyWatchers, s.cfg.MaxWatchers)
	}
	s.watchers++
	return &Watcher{s: s, prefix: bytes.Clone(prefix), exact: exact, next: from}, nil
}

// Close releases the watcher's place. It is idempotent; not concurrent
// with Next.
func (w *Watcher) Close() {
	if w.closed {
		return
	}
	w.closed = true
	w.s.mu.Lock()
	w.s.watchers--
	w.s.mu.Unlock()
}

// Next waits for the next revision that changed keys under the prefix and
// returns its changes (only those keys). It returns a
// *kvapi.CompactedError when the history forgot revisions the watcher had
// not read yet, or ctx's error.
func (w *Watcher) Next(ctx context.Context) (kvapi.Event, error) {
	for {
		ev, wait, err := w.poll()
		if err != nil || ev.Revision != 0 {
			return ev, err
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return kvapi.Event{}, ctx.Err()
		}
	}
}

// poll returns the next event, or the channel to wait on for one.
func (w *Watcher) poll() (kvapi.Event, <-chan struct{}, error) {
	s := w.s
	s.mu.RLock()
	defer s.mu.RUnlock()
	h := &s.hist
	if w.next <= h.compact {
		return kvapi.Event{}, nil, &kvapi.CompactedError{CompactRevision: h.compact, Reason: h.reason}
	}
	i := sort.Search(len(h.events), func(i int) bool { return h.events[i].rev >= w.next })
	for ; i < len(h.events); i++ {
		ev := h.events[i]
		var changes []kvapi.Change
		for _, c := range ev.changes {
			if bytes.HasPrefix(c.Key, w.prefix) && (!w.exact || len(c.Key) == len(w.prefix)) {
				changes = append(changes, c)
			}
		}
		if len(changes) > 0 {
			w.next = ev.rev + 1
			return kvapi.Event{Revision: ev.rev, Changes: changes}, nil, nil
		}
	}
	// Nothing for us up to the last applied entry: later changes come
	// after it, so the watcher's place moves past it (and an idle prefix
	// is not cut off when older revisions of other keys are forgotten).
	w.next = max(w.next, s.applied+1)
	return kvapi.Event{}, h.changed, nil
}
