package transport

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/raftex/raftex/raft"
)

// Message flags. Part of the wire format: never change a value.
const (
	flagReject   = 1 << 0
	flagSnapshot = 1 << 1
	flagsKnown   = flagReject | flagSnapshot
)

// minEntrySize is the fewest bytes an encoded entry takes (term, index,
// type, data length); it bounds the entry count a payload can claim.
const minEntrySize = 4

// AppendMessage appends the encoding of m to dst and returns the extended
// slice. It allocates only to grow dst. Snapshot.Data is not encoded (the
// body travels as a stream); everything else is.
func AppendMessage(dst []byte, m raft.Message) []byte {
	var flags byte
	if m.Reject {
		flags |= flagReject
	}
	if m.Snapshot != nil {
		flags |= flagSnapshot
	}
	dst = append(dst, byte(m.Type), flags)
	for _, v := range [...]uint64{m.From, m.To, m.Term, m.LogTerm, m.Index, m.Commit, m.RejectHint, m.ReadRound} {
		dst = binary.AppendUvarint(dst, v)
	}
	dst = appendBytes(dst, m.Context)
	dst = binary.AppendUvarint(dst, uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		dst = binary.AppendUvarint(dst, e.Term)
		dst = binary.AppendUvarint(dst, e.Index)
		dst = append(dst, byte(e.Type))
		dst = appendBytes(dst, e.Data)
	}
	if m.Snapshot != nil {
		meta := &m.Snapshot.Meta
		dst = binary.AppendUvarint(dst, meta.Index)
		dst = binary.AppendUvarint(dst, meta.Term)
		dst = appendIDs(dst, meta.Membership.Voters)
		dst = appendIDs(dst, meta.Membership.Learners)
		if meta.Membership.Extended() {
			// The rest of the configuration (joint consensus, staging
			// learners, peer addresses), in raft's encoding.
			dst = appendBytes(dst, meta.Membership.Marshal())
		}
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendIDs(dst []byte, ids []uint64) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		dst = binary.AppendUvarint(dst, id)
	}
	return dst
}

// DecodeMessage decodes a message encoded by AppendMessage. It never
// panics: any input it cannot decode exactly, with no byte left over, is an
// error wrapping ErrMalformed.
//
// Ownership: the message's Context and every entry's Data are sub-slices
// of b (capped, so appending to one never touches another), so b must not
// be modified or reused once the message is handed on. Decoding allocates
// once for the entries and, for a MsgSnap, for the snapshot meta.
func DecodeMessage(b []byte) (raft.Message, error) {
	d := decoder{b: b}
	m := d.message()
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return raft.Message{}, d.err
	}
	return m, nil
}

// decoder reads from b, which shrinks as it goes. The first failure sticks
// in err and turns every later read into a zero.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) message() raft.Message {
	var m raft.Message
	m.Type = raft.MessageType(d.byte())
	flags := d.byte()
	if d.err == nil && !m.Type.Valid() {
		d.fail("unknown message type %d", uint8(m.Type))
	}
	if d.err == nil && flags&^flagsKnown != 0 {
		d.fail("unknown flags %#x", flags)
	}
	m.Reject = flags&flagReject != 0
	for _, p := range [...]*uint64{&m.From, &m.To, &m.Term, &m.LogTerm, &m.Index, &m.Commit, &m.RejectHint, &m.ReadRound} {
		*p = d.uvarint()
	}
	m.Context = d.bytes()
	m.Entries = d.entries()
	if flags&flagSnapshot != 0 {
		m.Snapshot = d.snapshot()
	}
	return m
}

func (d *decoder) entries() []raft.Entry {
	n := d.count(minEntrySize, "entries")
	if n == 0 {
		return nil
	}
	ents := make([]raft.Entry, n)
	for i := range ents {
		ents[i].Term = d.uvarint()
		ents[i].Index = d.uvarint()
		ents[i].Type = raft.EntryType(d.byte())
		ents[i].Data = d.bytes()
	}
	return ents
}

func (d *decoder) snapshot() *raft.Snapshot {
	s := &raft.Snapshot{}
	s.Meta.Index = d.uvarint()
	s.Meta.Term = d.uvarint()
	s.Meta.Membership.Voters = d.ids("voters")
	s.Meta.Membership.Learners = d.ids("learners")
	if d.err == nil && len(d.b) > 0 {
		ext := d.bytes()
		if d.err != nil {
			return s
		}
		full, err := raft.UnmarshalMembership(ext)
		switch {
		case err != nil:
			d.fail("snapshot membership: %v", err)
		case !slices.Equal(full.Voters, s.Meta.Membership.Voters) || !slices.Equal(full.Learners, s.Meta.Membership.Learners):
			d.fail("snapshot membership extension disagrees with the member lists")
		default:
			s.Meta.Membership = full
		}
	}
	return s
}

func (d *decoder) ids(what string) []uint64 {
	n := d.count(1, what)
	if n == 0 {
		return nil
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = d.uvarint()
	}
	return ids
}

// count reads an element count and checks that the remaining bytes can
// hold that many elements of at least size bytes each, so a short payload
// can never make the decoder allocate much.
func (d *decoder) count(size int, what string) int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)/size) {
		d.fail("%d %s cannot fit in %d bytes", n, what, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) > 0 && d.b[0] < 0x80 { // one byte: most terms, lengths, types
		v := uint64(d.b[0])
		d.b = d.b[1:]
		return v
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns the next length-prefixed bytes as a capped sub-slice, or
// nil when the length is 0.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail("length %d exceeds the %d bytes left", n, len(d.b))
		return nil
	}
	if n == 0 {
		return nil
	}
	b := d.b[:n:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) fail(format string, args ...any) {
	d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
