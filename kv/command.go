package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Op is the kind of write a Command performs.
type Op uint8

// Op values are part of the log format (commands live in the Raft log and
// in snapshots of other nodes): never change them.
const (
	OpSet    Op = 1
	OpDelete Op = 2
	// OpMember records a member's addresses (see MemberInfo).
	OpMember Op = 3
)

// commandVersion is the first byte of every encoded command; part of the
// log format.
const commandVersion = 1

// Command is one write to the store, as proposed to the Raft log.
//
// Encoding (all integers uvarint):
//
//	+---------+----+-------+-----+---------+-----------+-----+---------+-----+---------+-------+
//	| version | op | flags | rev | len(id) | client id | seq | len(key)| key | len(val)| value |
//	+---------+----+-------+-----+---------+-----------+-----+---------+-----+---------+-------+
//
// flags bit 0: CAS (write only if the key's revision is rev).
type Command struct {
	Op    Op
	Key   []byte
	Value []byte
	// CAS makes the write conditional: it happens only if the key's
	// current revision is Revision (0: the key is absent).
	CAS      bool
	Revision uint64
	// ClientID and Seq identify the request within a client session for
	// exactly-once semantics (thesis §6.3); empty ClientID: no session.
	ClientID string
	Seq      uint64
}

// ErrBadCommand is returned for bytes that do not decode as a Command.
var ErrBadCommand = errors.New("kv: malformed command")

// Encode returns the log form of c.
func (c Command) Encode() []byte {
	b := make([]byte, 0, 16+len(c.ClientID)+len(c.Key)+len(c.Value))
	b = append(b, commandVersion, byte(c.Op))
	var flags uint64
	if c.CAS {
		flags |= 1
	}
	b = binary.AppendUvarint(b, flags)
	b = binary.AppendUvarint(b, c.Revision)
	b = appendBytes(b, []byte(c.ClientID))
	b = binary.AppendUvarint(b, c.Seq)
	b = appendBytes(b, c.Key)
	return appendBytes(b, c.Value)
}

// DecodeCommand parses the log form. Key and Value alias b.
func DecodeCommand(b []byte) (Command, error) {
	d := decoder{b: b}
	var c Command
	if v := d.byte(); v != commandVersion {
		return c, fmt.Errorf("%w: version %d", ErrBadCommand, v)
	}
	c.Op = Op(d.byte())
	flags := d.uvarint()
	c.CAS = flags&1 != 0
	c.Revision = d.uvarint()
	c.ClientID = string(d.bytes())
	c.Seq = d.uvarint()
	c.Key = d.bytes()
	c.Value = d.bytes()
	if d.err != nil {
		return Command{}, d.err
	}
	if len(d.b) != 0 {
		return Command{}, fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(d.b))
	}
	if c.Op != OpSet && c.Op != OpDelete && c.Op != OpMember {
		return Command{}, fmt.Errorf("%w: unknown op %d", ErrBadCommand, c.Op)
	}
	return c, nil
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// decoder reads a byte slice, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s", ErrBadCommand, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("byte")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail("bytes")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
