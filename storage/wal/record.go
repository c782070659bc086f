package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/raftex/raftex/raft"
)

// RecordType says what a record's payload holds. The values are part of
// the on-disk format and must never change.
type RecordType uint8

// Record types. Part of the on-disk format: never change or reuse a value.
const (
	TypeHeader     RecordType = 1
	TypeEntry      RecordType = 2
	TypeHardState  RecordType = 3
	TypeCompact    RecordType = 4
	TypeReset      RecordType = 5
	TypeMembership RecordType = 6
	TypeCommit     RecordType = 7
)

var typeNames = [...]string{"", "header", "entry", "hardstate", "compact", "reset", "membership", "commit"}

func (t RecordType) String() string {
	if t >= TypeHeader && t <= TypeCommit {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

const (
	// HeaderSize is the size of a record's header: length, type, CRC.
	// Part of the on-disk format.
	HeaderSize = 9
	// magic opens every segment's header record. Part of the on-disk
	// format.
	magic = "raftexwl"
	// version is the on-disk format's version, in every segment header.
	// Part of the on-disk format; bump it for any incompatible change.
	version = 1

	entryFixed     = 17 // term, index, type
	hardStateSize  = 24
	markSize       = 16 // compact and reset: index, term
	commitSize     = 8
	headerFixed    = 8 + 4 + 8*7 // magic, version, seq, first, base, base term, hard state
	commitRecLen   = HeaderSize + commitSize
	maxPayloadSize = 1<<32 - 1
)

// castagnoli is the CRC-32C table. The choice of polynomial is part of the
// on-disk format.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record decoding errors, wrapped in a *RecordError.
var (
	// ErrTruncated: the record runs past the end of the file.
	ErrTruncated = errors.New("wal: record runs past end of file")
	// ErrChecksum: the CRC does not match the record.
	ErrChecksum = errors.New("wal: record checksum mismatch")
	// ErrBadType: the type is not one this version knows.
	ErrBadType = errors.New("wal: unknown record type")
	// ErrBadPayload: the CRC matches but the payload cannot be decoded.
	ErrBadPayload = errors.New("wal: malformed record payload")
	// ErrTooLarge: a record to write exceeds the 4 GiB the length field
	// can describe.
	ErrTooLarge = errors.New("wal: record too large")
)

// RecordError is a record that could not be decoded, and where.
type RecordError struct {
	Offset int64
	Err    error
}

func (e *RecordError) Error() string { return fmt.Sprintf("offset %d: %v", e.Offset, e.Err) }
func (e *RecordError) Unwrap() error { return e.Err }

// Record is one decoded record; Payload aliases the buffer it came from.
type Record struct {
	Offset  int64
	Type    RecordType
	Payload []byte
}

// End is the offset just past the record.
func (r Record) End() int64 { return r.Offset + HeaderSize + int64(len(r.Payload)) }

// DecodeRecord decodes the record at buf[off:]. It never panics and never
// allocates: any bytes give either a record whose CRC matched or a
// *RecordError.
func DecodeRecord(buf []byte, off int64) (Record, error) {
	if off < 0 || off > int64(len(buf)) {
		return Record{}, &RecordError{off, ErrTruncated}
	}
	rest := buf[off:]
	if len(rest) < HeaderSize {
		return Record{}, &RecordError{off, ErrTruncated}
	}
	n := binary.LittleEndian.Uint32(rest)
	t := RecordType(rest[4])
	if uint64(n) > uint64(len(rest)-HeaderSize) {
		return Record{}, &RecordError{off, ErrTruncated}
	}
	payload := rest[HeaderSize : HeaderSize+int(n)]
	crc := crc32.Update(crc32.Checksum(rest[:5], castagnoli), castagnoli, payload)
	if crc != binary.LittleEndian.Uint32(rest[5:]) {
		return Record{}, &RecordError{off, ErrChecksum}
	}
	if t < TypeHeader || t > TypeCommit {
		return Record{}, &RecordError{off, ErrBadType}
	}
	return Record{Offset: off, Type: t, Payload: payload}, nil
}

// sealRecord completes the record whose payload was appended after the
// HeaderSize bytes reserved at buf[start:], filling in its header.
func sealRecord(buf []byte, start int, t RecordType) {
	n := len(buf) - start - HeaderSize
	binary.LittleEndian.PutUint32(buf[start:], uint32(n))
	buf[start+4] = byte(t)
	crc := crc32.Update(crc32.Checksum(buf[start:start+5], castagnoli), castagnoli, buf[start+HeaderSize:])
	binary.LittleEndian.PutUint32(buf[start+5:], crc)
}

var le = binary.LittleEndian

func appendEntry(buf []byte, e raft.Entry) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, HeaderSize)...)
	buf = le.AppendUint64(buf, e.Term)
	buf = le.AppendUint64(buf, e.Index)
	buf = append(buf, byte(e.Type))
	buf = append(buf, e.Data...)
	sealRecord(buf, start, TypeEntry)
	return buf
}

func appendUints(buf []byte, t RecordType, vs ...uint64) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, HeaderSize)...)
	for _, v := range vs {
		buf = le.AppendUint64(buf, v)
	}
	sealRecord(buf, start, t)
	return buf
}

func appendHardState(buf []byte, hs raft.HardState) []byte {
	return appendUints(buf, TypeHardState, hs.Term, hs.Vote, hs.Commit)
}

func appendMembershipPayload(buf []byte, m raft.Membership) []byte {
	for _, ids := range [][]uint64{m.Voters, m.Learners} {
		buf = le.AppendUint32(buf, uint32(len(ids)))
		for _, id := range ids {
			buf = le.AppendUint64(buf, id)
		}
	}
	return buf
}

func appendMembership(buf []byte, m raft.Membership) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, HeaderSize)...)
	buf = appendMembershipPayload(buf, m)
	sealRecord(buf, start, TypeMembership)
	return buf
}

// header is a segment header record's payload: the segment's identity and
// the log's state when it was created.
type header struct {
	seq, first     uint64
	base, baseTerm uint64
	hs             raft.HardState
	membership     raft.Membership
}

func appendHeader(buf []byte, h header) []byte {
	start := len(buf)
	buf = append(buf, make([]byte, HeaderSize)...)
	buf = append(buf, magic...)
	buf = le.AppendUint32(buf, version)
	for _, v := range []uint64{h.seq, h.first, h.base, h.baseTerm, h.hs.Term, h.hs.Vote, h.hs.Commit} {
		buf = le.AppendUint64(buf, v)
	}
	buf = appendMembershipPayload(buf, h.membership)
	sealRecord(buf, start, TypeHeader)
	return buf
}

func badPayload(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadPayload, fmt.Sprintf(format, args...))
}

func decodeHeader(p []byte) (header, error) {
	if len(p) < headerFixed || string(p[:8]) != magic {
		return header{}, badPayload("not a segment header (bad magic)")
	}
	if v := le.Uint32(p[8:]); v != version {
		return header{}, badPayload("unsupported format version %d (this build reads %d)", v, version)
	}
	u := func(i int) uint64 { return le.Uint64(p[12+8*i:]) }
	h := header{seq: u(0), first: u(1), base: u(2), baseTerm: u(3),
		hs: raft.HardState{Term: u(4), Vote: u(5), Commit: u(6)}}
	m, err := decodeMembership(p[headerFixed:])
	if err != nil {
		return header{}, err
	}
	h.membership = m
	return h, nil
}

func decodeEntry(p []byte) (raft.Entry, error) {
	if len(p) < entryFixed {
		return raft.Entry{}, badPayload("entry of %d bytes, want at least %d", len(p), entryFixed)
	}
	e := raft.Entry{Term: le.Uint64(p), Index: le.Uint64(p[8:]), Type: raft.EntryType(p[16])}
	if len(p) > entryFixed {
		e.Data = p[entryFixed:len(p):len(p)]
	}
	return e, nil
}

func decodeUints(p []byte, n int, what string) ([]uint64, error) {
	if len(p) != 8*n {
		return nil, badPayload("%s of %d bytes, want %d", what, len(p), 8*n)
	}
	vs := make([]uint64, n)
	for i := range vs {
		vs[i] = le.Uint64(p[8*i:])
	}
	return vs, nil
}

func decodeHardState(p []byte) (raft.HardState, error) {
	v, err := decodeUints(p, 3, "hard state")
	if err != nil {
		return raft.HardState{}, err
	}
	return raft.HardState{Term: v[0], Vote: v[1], Commit: v[2]}, nil
}

// mark is a compact or reset record: a log position and its term.
type mark struct{ index, term uint64 }

func decodeMark(p []byte) (mark, error) {
	v, err := decodeUints(p, 2, "compact/reset")
	if err != nil {
		return mark{}, err
	}
	return mark{index: v[0], term: v[1]}, nil
}

func decodeCommit(p []byte) (int64, error) {
	v, err := decodeUints(p, 1, "commit")
	if err != nil {
		return 0, err
	}
	if v[0] > 1<<62 {
		return 0, badPayload("commit of batch at offset %d", v[0])
	}
	return int64(v[0]), nil
}

func decodeMembership(p []byte) (raft.Membership, error) {
	var lists [2][]uint64
	for i := range lists {
		if len(p) < 4 {
			return raft.Membership{}, badPayload("membership cut short")
		}
		n := uint64(le.Uint32(p))
		p = p[4:]
		if n > uint64(len(p))/8 {
			return raft.Membership{}, badPayload("membership of %d ids in %d bytes", n, len(p))
		}
		for range n {
			lists[i] = append(lists[i], le.Uint64(p))
			p = p[8:]
		}
	}
	if len(p) != 0 {
		return raft.Membership{}, badPayload("%d trailing bytes after membership", len(p))
	}
	return raft.Membership{Voters: lists[0], Learners: lists[1]}, nil
}
