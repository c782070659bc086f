package kv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/google/btree"

	"github.com/raftex/raftex/node"
)

// Snapshot format (integers uvarint), streamed, never built in memory:
//
//	+-------+---------+---------+------------+----------+-------+------------+
//	| magic | applied | nmember | members..  | nsess    | sess..| nitems     |
//	+-------+---------+---------+------------+----------+-------+------------+
//	| items ... | end magic |
//	+-----------+-----------+
//	member:  id len(peer) peer len(client) client
//	session: len(id) id lastIndex maxSeq nresults {seq rev deleted errcode}...
//	item:    len(key) key len(value) value rev
//
// The snapshot file around it carries the checksum (package storage).
const (
	snapshotMagic    = "RXKV1\n"
	snapshotEndMagic = "END\n"
)

// ErrBadSnapshot is returned by Restore for input that is not a snapshot.
var ErrBadSnapshot = errors.New("kv: malformed snapshot")

type snapshot struct {
	tree     *btree.BTreeG[item]
	sessions map[string]*session
	members  map[uint64]MemberInfo
	applied  uint64
}

// Snapshot captures the state in O(1): the tree is cloned copy-on-write, so
// applying continues while WriteTo streams the view (node.FSM).
func (s *Store) Snapshot() (node.FSMSnapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sessions := make(map[string]*session, len(s.sessions))
	for id, sess := range s.sessions {
		c := *sess
		c.results = maps.Clone(sess.results)
		sessions[id] = &c
	}
	return &snapshot{tree: s.tree.Clone(), sessions: sessions, members: maps.Clone(s.members), applied: s.applied}, nil
}

func (sn *snapshot) Release() {}

// WriteTo streams the snapshot to w.
func (sn *snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	bw := bufio.NewWriterSize(cw, 256<<10)
	var buf []byte
	put := func(v uint64) { buf = binary.AppendUvarint(buf, v) }
	putBytes := func(p []byte) { put(uint64(len(p))); buf = append(buf, p...) }
	flush := func() error {
		_, err := bw.Write(buf)
		buf = buf[:0]
		return err
	}
	buf = append(buf, snapshotMagic...)
	put(sn.applied)
	put(uint64(len(sn.members)))
	for id, m := range sn.members {
		put(id)
		putBytes([]byte(m.PeerAddr))
		putBytes([]byte(m.ClientAddr))
	}
	put(uint64(len(sn.sessions)))
	for id, sess := range sn.sessions {
		putBytes([]byte(id))
		put(sess.lastIndex)
		put(sess.maxSeq)
		put(uint64(len(sess.results)))
		for seq, res := range sess.results {
			put(seq)
			put(res.Revision)
			if res.Deleted {
				put(1)
			} else {
				put(0)
			}
			put(errCode(res.Err))
		}
	}
	put(uint64(sn.tree.Len()))
	var err error
	sn.tree.Ascend(func(it item) bool {
		putBytes([]byte(it.key))
		putBytes(it.value)
		put(it.rev)
		if len(buf) > 64<<10 {
			err = flush()
		}
		return err == nil
	})
	if err != nil {
		return cw.n, err
	}
	buf = append(buf, snapshotEndMagic...)
	if err := flush(); err != nil {
		return cw.n, err
	}
	err = bw.Flush()
	return cw.n, err
}

// Restore replaces the state with a snapshot written by WriteTo (node.FSM).
func (s *Store) Restore(r io.Reader) error {
	br := bufio.NewReaderSize(r, 256<<10)
	rd := snapReader{r: br}
	rd.magic(snapshotMagic)
	applied := rd.uvarint()
	nmembers := rd.uvarint()
	members := map[uint64]MemberInfo{}
	for i := uint64(0); i < nmembers && rd.err == nil; i++ {
		id := rd.uvarint()
		members[id] = MemberInfo{PeerAddr: string(rd.bytes(MaxKeySize)), ClientAddr: string(rd.bytes(MaxKeySize))}
	}
	nsess := rd.uvarint()
	sessions := make(map[string]*session, min(nsess, 1<<16))
	for i := uint64(0); i < nsess && rd.err == nil; i++ {
		id := string(rd.bytes(MaxClientIDSize))
		sess := newSession()
		sess.lastIndex = rd.uvarint()
		sess.maxSeq = rd.uvarint()
		nres := rd.uvarint()
		for j := uint64(0); j < nres && rd.err == nil; j++ {
			seq := rd.uvarint()
			res := Result{Revision: rd.uvarint(), Deleted: rd.uvarint() == 1}
			res.Err = errFromCode(rd.uvarint(), res.Revision)
			sess.results[seq] = res
		}
		sessions[id] = sess
	}
	nitems := rd.uvarint()
	tree := btree.NewG(32, itemLess)
	for i := uint64(0); i < nitems && rd.err == nil; i++ {
		key := rd.bytes(MaxKeySize)
		value := rd.bytes(uint64(s.cfg.MaxValueSize))
		rev := rd.uvarint()
		if rd.err == nil {
			tree.ReplaceOrInsert(item{key: string(key), value: value, rev: rev})
		}
	}
	rd.magic(snapshotEndMagic)
	if rd.err != nil {
		return rd.err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tree, s.sessions, s.members, s.applied = tree, sessions, members, applied
	return nil
}

// Error codes of Results stored in snapshots; part of the snapshot format.
const (
	codeOK = iota
	codeCASMismatch
	codeKeyEmpty
	codeKeyTooLong
	codeValueTooBig
	codeSessionStale
	codeBadCommand
)

func errCode(err error) uint64 {
	switch {
	case err == nil:
		return codeOK
	case errors.Is(err, ErrCASMismatch):
		return codeCASMismatch
	case errors.Is(err, ErrKeyEmpty):
		return codeKeyEmpty
	case errors.Is(err, ErrKeyTooLong):
		return codeKeyTooLong
	case errors.Is(err, ErrValueTooBig):
		return codeValueTooBig
	case errors.Is(err, ErrSessionStale):
		return codeSessionStale
	default:
		return codeBadCommand
	}
}

func errFromCode(code, rev uint64) error {
	switch code {
	case codeOK:
		return nil
	case codeCASMismatch:
		return &CASMismatchError{Revision: rev}
	case codeKeyEmpty:
		return ErrKeyEmpty
	case codeKeyTooLong:
		return ErrKeyTooLong
	case codeValueTooBig:
		return ErrValueTooBig
	case codeSessionStale:
		return ErrSessionStale
	default:
		return ErrBadCommand
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// snapReader reads the snapshot format, remembering the first error.
type snapReader struct {
	r   *bufio.Reader
	err error
}

func (d *snapReader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, args...)...)
	}
}

func (d *snapReader) magic(want string) {
	if d.err != nil {
		return
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(d.r, got); err != nil || string(got) != want {
		d.fail("missing marker %q", want)
	}
}

func (d *snapReader) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(d.r)
	if err != nil {
		d.fail("reading integer: %v", err)
	}
	return v
}

func (d *snapReader) bytes(limit uint64) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > limit {
		d.fail("length %d over limit %d", n, limit)
		return nil
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(d.r, p); err != nil {
		d.fail("reading %d bytes: %v", n, err)
		return nil
	}
	return p
}
