package kv

import "slices"

// sessionTable holds the registered sessions by client id, and in order of
// last use (lastIndex, oldest first): a session used moves to the back,
// so the order, and with it which session expiry and eviction take first,
// is a function of the log alone.
type sessionTable struct {
	byID       map[uint64]*session
	head, tail *session
}

// newSessionTable returns a table of the sessions in m, ordered by their
// lastIndex (as a snapshot restores them).
func newSessionTable(m map[uint64]*session) *sessionTable {
	t := &sessionTable{byID: map[uint64]*session{}}
	all := make([]*session, 0, len(m))
	for id, sess := range m {
		sess.id = id
		all = append(all, sess)
	}
	slices.SortFunc(all, func(a, b *session) int {
		switch {
		case a.lastIndex != b.lastIndex:
			return cmpUint(a.lastIndex, b.lastIndex)
		}
		return cmpUint(a.id, b.id)
	})
	for _, sess := range all {
		t.add(sess.id, sess)
	}
	return t
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (t *sessionTable) len() int                 { return len(t.byID) }
func (t *sessionTable) get(id uint64) *session   { return t.byID[id] }
func (t *sessionTable) oldest() *session         { return t.head }
func (t *sessionTable) all() map[uint64]*session { return t.byID }
func (t *sessionTable) add(id uint64, sess *session) {
	sess.id = id
	t.byID[id] = sess
	t.pushBack(sess)
}

func (t *sessionTable) remove(sess *session) {
	delete(t.byID, sess.id)
	t.unlink(sess)
}

// touch moves sess to the back: it is used at the newest index.
func (t *sessionTable) touch(sess *session) {
	t.unlink(sess)
	t.pushBack(sess)
}

func (t *sessionTable) pushBack(sess *session) {
	sess.prev, sess.next = t.tail, nil
	if t.tail != nil {
		t.tail.next = sess
	} else {
		t.head = sess
	}
	t.tail = sess
}

func (t *sessionTable) unlink(sess *session) {
	if sess.prev != nil {
		sess.prev.next = sess.next
	} else {
		t.head = sess.next
	}
	if sess.next != nil {
		sess.next.prev = sess.prev
	} else {
		t.tail = sess.prev
	}
	sess.prev, sess.next = nil, nil
}
