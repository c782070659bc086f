package kv

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/google/btree"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/kvapi"
	"github.com/raftex/raftex/node"
)

// Snapshot format, version 2 (integers uvarint), streamed, never built in
// memory: a magic, then sections in increasing tag order, then tag 0.
//
//	+------------+-----+--------+-----+--------+-----+---------+
//	| "RXKV2\n"  | tag | chunks | tag | chunks | ... | tag = 0 |
//	+------------+-----+--------+-----+--------+-----+---------+
//	chunks:   { len(chunk) chunk }... 0   (a section's payload, cut anywhere)
//
// Sections and their payloads:
//
//	1 meta:            applied
//	2 members:         { id len(peer) peer len(client) client }...
//	3 sessions:        { clientID session }...
//	4 legacy sessions: { len(id) id session }...   (version-1 commands)
//	5 items:           { len(key) key len(value) value rev }...   in key order
//	6 auth:            len(state) state   (auth.State.Encode; written only
//	                   once auth was used, so older readers still read the
//	                   snapshots of a cluster that never used it)
//	7 results:         { clientID seq count len(txn) txn }...   what the
//	                   sessions' results hold beyond section 3's fields: a
//	                   prefix delete's count, a transaction's outcome
//	                   (encodeTxnResult; empty: none). Written only when
//	                   some result has them, like section 6.
//	session:           lastIndex maxSeq nresults { seq digest rev deleted errcode }...
//
// Meta is required; a missing section is empty. State added later is a
// new section with the next tag: a reader refuses a
// tag it does not know, since skipping state would make this node's state
// machine differ from the others'. The chunked payload lets the writer
// stream a section of unknown length, and the reader check that each
// section decodes to its exact end.
//
// Version 1 ("RXKV1\n", still restored) had the fields of meta, members,
// sessions with string ids and no digest, and items in one run, each list
// preceded by its count, then "END\n".
//
// The snapshot file around it carries the checksum (package storage).
const (
	snapshotMagic    = "RXKV2\n"
	snapshotMagicV1  = "RXKV1\n"
	snapshotEndMagic = "END\n" // version 1 only

	tagEnd            = 0
	tagMeta           = 1
	tagMembers        = 2
	tagSessions       = 3
	tagLegacySessions = 4
	tagItems          = 5
	tagAuth           = 6
	tagResults        = 7

	// maxAuthSize bounds the auth section's state.
	maxAuthSize = 256 << 20

	// chunkSize is the size at which the writer cuts a chunk, reached
	// after a whole record (so a chunk may exceed it by one record).
	chunkSize = 64 << 10
)

// ErrBadSnapshot is returned by Restore for input that is not a snapshot.
var ErrBadSnapshot = errors.New("kv: malformed snapshot")

type snapshot struct {
	tree     *btree.BTreeG[item]
	sessions map[uint64]*session
	legacy   map[string]*session
	members  map[uint64]MemberInfo
	auth     *auth.State
	applied  uint64
}

// Snapshot captures the state in O(1) for the keys: the tree is cloned
// copy-on-write, so applying continues while WriteTo streams the view
// (node.FSM). Sessions and members are copied.
func (s *Store) Snapshot() (node.FSMSnapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &snapshot{tree: s.tree.Clone(), sessions: cloneSessions(s.sessions.all()), legacy: cloneSessions(s.legacy),
		members: maps.Clone(s.members), auth: s.auth, applied: s.applied}, nil
}

func cloneSessions[K comparable](in map[K]*session) map[K]*session {
	out := make(map[K]*session, len(in))
	for id, sess := range in {
		c := *sess
		c.prev, c.next = nil, nil
		c.results = maps.Clone(sess.results)
		out[id] = &c
	}
	return out
}

func (sn *snapshot) Release() {}

// WriteTo streams the snapshot to w.
func (sn *snapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countingWriter{w: w}
	sw := &sectionWriter{w: bufio.NewWriterSize(cw, 256<<10)}
	sw.raw([]byte(snapshotMagic))
	sw.section(tagMeta, func() { sw.uvarint(sn.applied) })
	sw.section(tagMembers, func() {
		for id, m := range sn.members {
			sw.uvarint(id)
			sw.bytes([]byte(m.PeerAddr))
			sw.bytes([]byte(m.ClientAddr))
			sw.record()
		}
	})
	sw.section(tagSessions, func() {
		for id, sess := range sn.sessions {
			sw.uvarint(id)
			sw.session(sess)
		}
	})
	sw.section(tagLegacySessions, func() {
		for id, sess := range sn.legacy {
			sw.bytes([]byte(id))
			sw.session(sess)
		}
	})
	sw.section(tagItems, func() {
		sn.tree.Ascend(func(it item) bool {
			sw.bytes([]byte(it.key))
			sw.bytes(it.value)
			sw.uvarint(it.rev)
			sw.record()
			return sw.err == nil
		})
	})
	if !sn.auth.Empty() {
		sw.section(tagAuth, func() { sw.bytes(sn.auth.Encode()) })
	}
	if hasExtendedResults(sn.sessions) {
		sw.section(tagResults, func() {
			for id, sess := range sn.sessions {
				for seq, r := range sess.results {
					if r.Count == 0 && r.Txn == nil {
						continue
					}
					sw.uvarint(id)
					sw.uvarint(seq)
					sw.uvarint(r.Count)
					var txn []byte
					if r.Txn != nil {
						txn = encodeTxnResult(r.Txn)
					}
					sw.bytes(txn)
					sw.record()
				}
			}
		})
	}
	sw.raw(binary.AppendUvarint(nil, tagEnd))
	if sw.err == nil {
		sw.err = sw.w.Flush()
	}
	return cw.n, sw.err
}

func hasExtendedResults(sessions map[uint64]*session) bool {
	for _, sess := range sessions {
		for _, r := range sess.results {
			if r.Count != 0 || r.Txn != nil {
				return true
			}
		}
	}
	return false
}

// sectionWriter writes sections of chunks, remembering the first error.
type sectionWriter struct {
	w   *bufio.Writer
	buf []byte // the current chunk
	err error
}

func (sw *sectionWriter) raw(p []byte) {
	if sw.err == nil {
		_, sw.err = sw.w.Write(p)
	}
}

func (sw *sectionWriter) uvarint(v uint64) { sw.buf = binary.AppendUvarint(sw.buf, v) }

func (sw *sectionWriter) bytes(p []byte) {
	sw.uvarint(uint64(len(p)))
	sw.buf = append(sw.buf, p...)
}

// record ends a record: the chunk is cut once it is large enough.
func (sw *sectionWriter) record() {
	if len(sw.buf) >= chunkSize {
		sw.chunk()
	}
}

func (sw *sectionWriter) chunk() {
	if len(sw.buf) == 0 {
		return
	}
	sw.raw(binary.AppendUvarint(nil, uint64(len(sw.buf))))
	sw.raw(sw.buf)
	sw.buf = sw.buf[:0]
}

func (sw *sectionWriter) section(tag uint64, body func()) {
	sw.raw(binary.AppendUvarint(nil, tag))
	body()
	sw.chunk()
	sw.raw([]byte{0})
}

func (sw *sectionWriter) session(sess *session) {
	sw.uvarint(sess.lastIndex)
	sw.uvarint(sess.maxSeq)
	sw.uvarint(uint64(len(sess.results)))
	for seq, r := range sess.results {
		sw.uvarint(seq)
		sw.uvarint(r.digest)
		sw.uvarint(r.Revision)
		if r.Deleted {
			sw.uvarint(1)
		} else {
			sw.uvarint(0)
		}
		sw.uvarint(errCode(r.Err))
	}
	sw.record()
}

// restored is the state a snapshot holds, built before it replaces the
// store's.
type restored struct {
	tree     *btree.BTreeG[item]
	sessions map[uint64]*session
	legacy   map[string]*session
	members  map[uint64]MemberInfo
	auth     *auth.State
	applied  uint64
}

// Restore replaces the state with a snapshot written by WriteTo, of this
// version or version 1 (node.FSM). On error the state is unchanged.
func (s *Store) Restore(r io.Reader) error {
	br := bufio.NewReaderSize(r, 256<<10)
	st := &restored{tree: btree.NewG(32, itemLess), sessions: map[uint64]*session{}, legacy: map[string]*session{},
		members: map[uint64]MemberInfo{}}
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return fmt.Errorf("%w: reading the header: %v", ErrBadSnapshot, err)
	}
	var err error
	switch string(magic) {
	case snapshotMagic:
		err = s.restoreSections(br, st)
	case snapshotMagicV1:
		err = s.restoreV1(&snapReader{r: br}, st)
	default:
		return fmt.Errorf("%w: header %q is not %q or %q", ErrBadSnapshot, magic, snapshotMagic, snapshotMagicV1)
	}
	if err != nil {
		return err
	}
	switch _, err := br.ReadByte(); {
	case err == nil:
		return fmt.Errorf("%w: bytes after the end", ErrBadSnapshot)
	case err != io.EOF:
		return fmt.Errorf("kv: reading the snapshot's end: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tree, s.sessions, s.legacy, s.members, s.auth, s.applied = st.tree, newSessionTable(st.sessions), st.legacy, st.members, st.auth, st.applied
	// The changes up to the snapshot are not in this node's history: a
	// watch from before it gets 410, and so do running ones.
	s.hist.skipTo(st.applied)
	return nil
}

func (s *Store) restoreSections(br *bufio.Reader, st *restored) error {
	last, sawMeta := uint64(tagEnd), false
	for {
		tag, err := binary.ReadUvarint(br)
		if err != nil {
			return fmt.Errorf("%w: reading a section tag after section %d: %v", ErrBadSnapshot, last, err)
		}
		if tag == tagEnd {
			break
		}
		if tag <= last {
			return fmt.Errorf("%w: section %d after section %d (sections come once, in tag order)", ErrBadSnapshot, tag, last)
		}
		last = tag
		sec := &sectionReader{r: br}
		rd := &snapReader{r: sec, where: fmt.Sprintf("section %d: ", tag)}
		switch tag {
		case tagMeta:
			st.applied, sawMeta = rd.uvarint(), true
		case tagMembers:
			for rd.more(sec) {
				id := rd.uvarint()
				st.members[id] = MemberInfo{PeerAddr: string(rd.bytes(MaxKeySize)), ClientAddr: string(rd.bytes(MaxKeySize))}
			}
		case tagSessions:
			for rd.more(sec) {
				id := rd.uvarint()
				st.sessions[id] = rd.session(true)
			}
		case tagLegacySessions:
			for rd.more(sec) {
				id := string(rd.bytes(maxLegacyIDSize))
				st.legacy[id] = rd.session(true)
			}
		case tagItems:
			for rd.more(sec) {
				rd.item(st.tree, uint64(s.cfg.MaxValueSize))
			}
		case tagAuth:
			if b := rd.bytes(maxAuthSize); rd.err == nil {
				var err error
				if st.auth, err = auth.DecodeState(b); err != nil {
					rd.fail("%v", err)
				}
			}
		case tagResults:
			for rd.more(sec) {
				rd.extendedResult(st.sessions, uint64(s.cfg.MaxValueSize))
			}
		default:
			return fmt.Errorf("%w: unknown section %d (written by a newer version?)", ErrBadSnapshot, tag)
		}
		if rd.more(sec) {
			rd.fail("longer than its content")
		}
		if rd.err != nil {
			return rd.err
		}
	}
	if !sawMeta {
		return fmt.Errorf("%w: no meta section", ErrBadSnapshot)
	}
	return nil
}

// restoreV1 reads the rest of a version-1 snapshot: its sessions, named by
// their clients, become legacy sessions.
func (s *Store) restoreV1(rd *snapReader, st *restored) error {
	st.applied = rd.uvarint()
	nmembers := rd.uvarint()
	for i := uint64(0); i < nmembers && rd.err == nil; i++ {
		id := rd.uvarint()
		st.members[id] = MemberInfo{PeerAddr: string(rd.bytes(MaxKeySize)), ClientAddr: string(rd.bytes(MaxKeySize))}
	}
	nsess := rd.uvarint()
	for i := uint64(0); i < nsess && rd.err == nil; i++ {
		id := string(rd.bytes(maxLegacyIDSize))
		st.legacy[id] = rd.session(false)
	}
	nitems := rd.uvarint()
	for i := uint64(0); i < nitems && rd.err == nil; i++ {
		rd.item(st.tree, uint64(s.cfg.MaxValueSize))
	}
	rd.magic(snapshotEndMagic)
	return rd.err
}

// Error codes of Results stored in snapshots; part of the snapshot format.
// A code this version does not know reads as ErrBadCommand.
const (
	codeOK = iota
	codeCASMismatch
	codeKeyEmpty
	codeKeyTooLong
	codeValueTooBig
	codeSessionStale
	codeBadCommand
	codeUnauthenticated
	codePermissionDenied
	codeUserExists
	codeRoleExists
	codeNoUser
	codeNoRole
	codeRootRole
	codeNoRootUser
	codeLastRoot
	codeBadChange
	codeTxnTooBig
)

// resultErrors are the errors a remembered Result may hold, by code (the
// CAS mismatch, which carries a revision, aside).
var resultErrors = []struct {
	code uint64
	err  error
}{
	{codeKeyEmpty, ErrKeyEmpty},
	{codeKeyTooLong, ErrKeyTooLong},
	{codeValueTooBig, ErrValueTooBig},
	{codeSessionStale, ErrSessionStale},
	{codeUnauthenticated, auth.ErrUnauthenticated},
	{codePermissionDenied, auth.ErrPermissionDenied},
	{codeUserExists, auth.ErrUserExists},
	{codeRoleExists, auth.ErrRoleExists},
	{codeNoUser, auth.ErrNoUser},
	{codeNoRole, auth.ErrNoRole},
	{codeRootRole, auth.ErrRootRole},
	{codeNoRootUser, auth.ErrNoRootUser},
	{codeLastRoot, auth.ErrLastRoot},
	{codeBadChange, auth.ErrBadChange},
	{codeTxnTooBig, ErrTxnTooBig},
}

func errCode(err error) uint64 {
	switch {
	case err == nil:
		return codeOK
	case errors.Is(err, kvapi.ErrCASMismatch):
		return codeCASMismatch
	}
	for _, e := range resultErrors {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return codeBadCommand
}

func errFromCode(code, rev uint64) error {
	switch code {
	case codeOK:
		return nil
	case codeCASMismatch:
		return &kvapi.CASMismatchError{Revision: rev}
	}
	for _, e := range resultErrors {
		if e.code == code {
			return e.err
		}
	}
	return ErrBadCommand
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

// byteReader is what snapReader reads from: the whole snapshot (version
// 1) or one section's payload.
type byteReader interface {
	io.Reader
	io.ByteReader
}

// sectionReader reads one section's payload across its chunks; it
// returns io.EOF after the empty chunk that ends the section.
type sectionReader struct {
	r    *bufio.Reader
	left uint64 // bytes left in the current chunk
	done bool
	err  error
}

// next moves to the next chunk when the current one is used up, and
// reports whether payload bytes are left.
func (sr *sectionReader) next() bool {
	for sr.left == 0 && !sr.done && sr.err == nil {
		n, err := binary.ReadUvarint(sr.r)
		switch {
		case err != nil:
			sr.err = fmt.Errorf("reading a chunk length: %w", noEOF(err))
		case n == 0:
			sr.done = true
		default:
			sr.left = n
		}
	}
	return sr.left > 0
}

func (sr *sectionReader) Read(p []byte) (int, error) {
	if !sr.next() {
		return 0, sr.end()
	}
	n, err := sr.r.Read(p[:min(uint64(len(p)), sr.left)])
	sr.left -= uint64(n)
	if err != nil {
		sr.err = noEOF(err)
	}
	return n, sr.err
}

func (sr *sectionReader) ReadByte() (byte, error) {
	if !sr.next() {
		return 0, sr.end()
	}
	b, err := sr.r.ReadByte()
	if err != nil {
		sr.err = noEOF(err)
		return 0, sr.err
	}
	sr.left--
	return b, nil
}

func (sr *sectionReader) end() error {
	if sr.err != nil {
		return sr.err
	}
	return io.EOF
}

// noEOF turns the end of the snapshot inside a section into an error:
// only the section's own end is an io.EOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// snapReader reads the snapshot format, remembering the first error.
type snapReader struct {
	r     byteReader
	where string // prefixes errors: the section read
	err   error
}

func (d *snapReader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s%s", ErrBadSnapshot, d.where, fmt.Sprintf(format, args...))
	}
}

// more reports whether sec holds another record.
func (d *snapReader) more(sec *sectionReader) bool {
	if d.err != nil {
		return false
	}
	if sec.next() {
		return true
	}
	if sec.err != nil {
		d.fail("%v", sec.err)
	}
	return false
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
		d.fail("reading integer: %v", noEOF(err))
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
		d.fail("reading %d bytes: %v", n, noEOF(err))
		return nil
	}
	return p
}

// session reads a session; withDigest: version 2 (version 1 kept no
// digest).
func (d *snapReader) session(withDigest bool) *session {
	sess := newSession(d.uvarint())
	sess.maxSeq = d.uvarint()
	nres := d.uvarint()
	for j := uint64(0); j < nres && d.err == nil; j++ {
		seq := d.uvarint()
		var r sessionResult
		if withDigest {
			r.digest = d.uvarint()
		}
		r.Revision = d.uvarint()
		r.Deleted = d.uvarint() == 1
		r.Err = errFromCode(d.uvarint(), r.Revision)
		sess.results[seq] = r
	}
	return sess
}

// extendedResult reads a record of section 7 into the result it extends.
func (d *snapReader) extendedResult(sessions map[uint64]*session, maxValue uint64) {
	id, seq, count := d.uvarint(), d.uvarint(), d.uvarint()
	b := d.bytes(maxValue + kvapi.MaxTxnOps*64)
	if d.err != nil {
		return
	}
	sess := sessions[id]
	if sess == nil {
		d.fail("result of session %d, which section 3 does not have", id)
		return
	}
	r, ok := sess.results[seq]
	if !ok {
		d.fail("result %d of session %d, which section 3 does not have", seq, id)
		return
	}
	r.Count = count
	if len(b) > 0 {
		var err error
		if r.Txn, err = decodeTxnResult(b); err != nil {
			d.fail("result %d of session %d: %v", seq, id, err)
			return
		}
	}
	sess.results[seq] = r
}

func (d *snapReader) item(tree *btree.BTreeG[item], maxValue uint64) {
	key := d.bytes(MaxKeySize)
	value := d.bytes(maxValue)
	rev := d.uvarint()
	if d.err == nil {
		tree.ReplaceOrInsert(item{key: string(key), value: value, rev: rev})
	}
}
