package kv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/raftex/raftex/auth"
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
	// OpRegister opens a client session (thesis §6.3, RegisterClient): the
	// session's client id is the log index of this entry, unique for good.
	OpRegister Op = 4
	// OpAuth changes users, roles or whether auth is enabled: Value is an
	// encoded auth.Change.
	OpAuth Op = 5
	// OpDeletePrefix deletes every key that starts with Key (every key
	// for an empty Key) as one revision.
	OpDeletePrefix Op = 6
	// OpTxn is a transaction: Value is its encoding (encodeTxn).
	OpTxn Op = 7
)

// Versions of the command encoding, its first byte; part of the log
// format.
const (
	// commandV1 names a session by a string the client chose. Logs written
	// before sessions were registered hold it: it is decoded and applied as
	// it was then, and never proposed anew.
	commandV1 = 1
	// commandV2 names a session by its client id (the index of its
	// OpRegister entry).
	commandV2 = 2
)

// Command is one write to the store, as proposed to the Raft log.
//
// Encoding (all integers uvarint):
//
//	+---------+----+-------+-----+-----------+-----+----------+-----+----------+-------+
//	| version | op | flags | rev | client id | seq | len(key) | key | len(val) | value |
//	+---------+----+-------+-----+-----------+-----+----------+-----+----------+-------+
//
// version is 2; flags bit 0: CAS (write only if the key's revision is
// rev); flags bit 1: ByClient, and len(user) user follow the value.
// Version 1, still decoded, has len(id) and a string id in place of the
// client id.
type Command struct {
	Op    Op
	Key   []byte
	Value []byte
	// CAS makes the write conditional: it happens only if the key's
	// current revision is Revision (0: the key is absent).
	CAS      bool
	Revision uint64
	// ClientID and Seq identify the request within a client session for
	// exactly-once semantics (thesis §6.3). ClientID is what registering
	// the session returned (the index of its OpRegister entry); 0: no
	// session.
	ClientID uint64
	Seq      uint64
	// ByClient marks a command a client sent through the API: the state
	// machine checks, at apply, that User may do it (with auth enabled;
	// User "" is anonymous). Commands a node proposes itself (its member
	// publication, its own session) are not checked.
	ByClient bool
	User     string
	// legacyID is the client-chosen session name of a version-1 command.
	legacyID string
}

// command flags; part of the log format.
const (
	flagCAS      = 1 << 0
	flagByClient = 1 << 1
)

// Register returns the command that opens a client session.
func Register() Command { return Command{Op: OpRegister} }

// ChangeAuth returns the command that applies an auth change.
func ChangeAuth(c auth.Change) Command { return Command{Op: OpAuth, Value: c.Encode()} }

// ErrBadCommand is returned for bytes that do not decode as a Command.
var ErrBadCommand = errors.New("kv: malformed command")

// Encode returns the log form of c.
func (c Command) Encode() []byte {
	b := make([]byte, 0, 24+len(c.legacyID)+len(c.Key)+len(c.Value))
	version := byte(commandV2)
	if c.legacyID != "" {
		version = commandV1
	}
	b = append(b, version, byte(c.Op))
	var flags uint64
	if c.CAS {
		flags |= flagCAS
	}
	if c.ByClient {
		flags |= flagByClient
	}
	b = binary.AppendUvarint(b, flags)
	b = binary.AppendUvarint(b, c.Revision)
	if version == commandV1 {
		b = appendBytes(b, []byte(c.legacyID))
	} else {
		b = binary.AppendUvarint(b, c.ClientID)
	}
	b = binary.AppendUvarint(b, c.Seq)
	b = appendBytes(b, c.Key)
	b = appendBytes(b, c.Value)
	if c.ByClient {
		b = appendBytes(b, []byte(c.User))
	}
	return b
}

// DecodeCommand parses the log form. Key and Value alias b.
func DecodeCommand(b []byte) (Command, error) {
	d := decoder{b: b}
	var c Command
	version := d.byte()
	if version != commandV1 && version != commandV2 {
		return c, fmt.Errorf("%w: version %d", ErrBadCommand, version)
	}
	c.Op = Op(d.byte())
	flags := d.uvarint()
	c.CAS = flags&flagCAS != 0
	c.ByClient = flags&flagByClient != 0
	c.Revision = d.uvarint()
	if version == commandV1 {
		c.legacyID = string(d.bytes())
	} else {
		c.ClientID = d.uvarint()
	}
	c.Seq = d.uvarint()
	c.Key = d.bytes()
	c.Value = d.bytes()
	if c.ByClient {
		c.User = string(d.bytes())
	}
	if d.err != nil {
		return Command{}, d.err
	}
	if len(d.b) != 0 {
		return Command{}, fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(d.b))
	}
	switch {
	case flags&^(flagCAS|flagByClient) != 0:
		return Command{}, fmt.Errorf("%w: unknown flags %#x", ErrBadCommand, flags)
	case version == commandV1 && (c.Op == OpRegister || c.Op == OpAuth || c.ByClient):
		return Command{}, fmt.Errorf("%w: version 1 has no op %d or requester", ErrBadCommand, c.Op)
	case c.Op == OpRegister && (c.CAS || c.Revision != 0 || c.ClientID != 0 || c.Seq != 0 || len(c.Key) != 0 || len(c.Value) != 0):
		return Command{}, fmt.Errorf("%w: a register command carries nothing but its requester", ErrBadCommand)
	case c.Op == OpAuth && (c.CAS || c.Revision != 0 || len(c.Key) != 0):
		return Command{}, fmt.Errorf("%w: an auth command carries only its change", ErrBadCommand)
	case version == commandV1 && (c.Op == OpDeletePrefix || c.Op == OpTxn):
		return Command{}, fmt.Errorf("%w: version 1 has no op %d", ErrBadCommand, c.Op)
	case (c.Op == OpDeletePrefix || c.Op == OpTxn) && c.CAS:
		return Command{}, fmt.Errorf("%w: op %d takes no revision to compare", ErrBadCommand, c.Op)
	case c.Op == OpTxn && len(c.Key) != 0:
		return Command{}, fmt.Errorf("%w: a transaction carries its keys in its value", ErrBadCommand)
	case c.Op < OpSet || c.Op > OpTxn:
		return Command{}, fmt.Errorf("%w: unknown op %d", ErrBadCommand, c.Op)
	}
	return c, nil
}

// digest identifies what a command does, apart from its session: a retry
// of a request has the digest of the original, and a different command
// reusing its sequence number (almost surely) another one. It is two
// CRC-32s (Castagnoli and IEEE, both computed in hardware on common
// CPUs, so a 1 MiB value costs well under a millisecond): it catches
// clients that reuse numbers by mistake, and is no defense against a
// client confusing its own session on purpose. It leaves out who sent
// the command: a client that logged in between two attempts of a write
// (its first went anonymous, and was refused) sends the same write.
// Part of the snapshot format (sessions keep it beside each result).
func (c Command) digest() uint64 {
	var buf [2 + 3*binary.MaxVarintLen64]byte
	b := append(buf[:0], byte(c.Op))
	if c.CAS {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, c.Revision)
	b = binary.AppendUvarint(b, uint64(len(c.Key)))
	b = binary.AppendUvarint(b, uint64(len(c.Value)))
	hi, lo := crc32.Checksum(b, castagnoli), crc32.ChecksumIEEE(b)
	for _, p := range [][]byte{c.Key, c.Value} {
		hi, lo = crc32.Update(hi, castagnoli, p), crc32.Update(lo, crc32.IEEETable, p)
	}
	return uint64(hi)<<32 | uint64(lo)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

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
