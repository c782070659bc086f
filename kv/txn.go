package kv

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/raftex/raftex/auth"
	"github.com/raftex/raftex/kvapi"
)

// Transaction encoding, the Value of an OpTxn command (integers uvarint);
// part of the log format:
//
//	ncompare { kind len(key) key (rev | len(value) value | exists) }...
//	nsuccess { kind len(key) key [len(value) value if put] }...
//	nfailure { ... }
func encodeTxn(t kvapi.Txn) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(len(t.Compare)))
	for _, c := range t.Compare {
		b = append(b, byte(c.Kind))
		b = appendBytes(b, c.Key)
		switch c.Kind {
		case kvapi.CompareRevision:
			b = binary.AppendUvarint(b, c.Revision)
		case kvapi.CompareValue:
			b = appendBytes(b, c.Value)
		default:
			b = binary.AppendUvarint(b, boolUint(c.Exists))
		}
	}
	for _, ops := range [][]kvapi.Op{t.Success, t.Failure} {
		b = binary.AppendUvarint(b, uint64(len(ops)))
		for _, o := range ops {
			b = append(b, byte(o.Kind))
			b = appendBytes(b, o.Key)
			if o.Kind == kvapi.OpPut {
				b = appendBytes(b, o.Value)
			}
		}
	}
	return b
}

func boolUint(v bool) uint64 {
	if v {
		return 1
	}
	return 0
}

func decodeTxn(b []byte) (kvapi.Txn, error) {
	d := decoder{b: b}
	var t kvapi.Txn
	count := func() uint64 {
		n := d.uvarint()
		if n > kvapi.MaxTxnOps {
			d.err = fmt.Errorf("%w: %d ops in a transaction's part, limit %d", ErrBadCommand, n, kvapi.MaxTxnOps)
			d.b = nil
			return 0
		}
		return n
	}
	for i, n := uint64(0), count(); i < n && d.err == nil; i++ {
		c := kvapi.Compare{Kind: kvapi.CompareKind(d.byte()), Key: d.bytes()}
		switch c.Kind {
		case kvapi.CompareRevision:
			c.Revision = d.uvarint()
		case kvapi.CompareValue:
			c.Value = d.bytes()
		case kvapi.CompareExists:
			c.Exists = d.uvarint() == 1
		default:
			d.fail("compare kind")
		}
		t.Compare = append(t.Compare, c)
	}
	for _, ops := range []*[]kvapi.Op{&t.Success, &t.Failure} {
		for i, n := uint64(0), count(); i < n && d.err == nil; i++ {
			o := kvapi.Op{Kind: kvapi.OpKind(d.byte()), Key: d.bytes()}
			switch o.Kind {
			case kvapi.OpPut:
				o.Value = d.bytes()
			case kvapi.OpDelete, kvapi.OpGet:
			default:
				d.fail("op kind")
			}
			*ops = append(*ops, o)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		return t, fmt.Errorf("%w: %d trailing bytes in a transaction", ErrBadCommand, len(d.b))
	}
	return t, d.err
}

// DecodeTxn returns the transaction an OpTxn command carries.
func (c Command) DecodeTxn() (kvapi.Txn, error) {
	if c.Op != OpTxn {
		return kvapi.Txn{}, fmt.Errorf("%w: op %d is no transaction", ErrBadCommand, c.Op)
	}
	return decodeTxn(c.Value)
}

// TxnCommand returns the command of a transaction, checking it first
// against this store's limits.
func (s *Store) TxnCommand(t kvapi.Txn) (Command, error) {
	if err := s.validateTxn(t); err != nil {
		return Command{}, err
	}
	return Txn(t), nil
}

// Txn returns the command of a transaction, unchecked (the state machine
// checks it again at apply).
func Txn(t kvapi.Txn) Command { return Command{Op: OpTxn, Value: encodeTxn(t)} }

func (s *Store) validateTxn(t kvapi.Txn) error {
	if len(t.Compare) > kvapi.MaxTxnOps || len(t.Success) > kvapi.MaxTxnOps || len(t.Failure) > kvapi.MaxTxnOps {
		return fmt.Errorf("%w: more than %d compares or ops in a branch", ErrTxnTooBig, kvapi.MaxTxnOps)
	}
	size := 0
	for _, ops := range [][]kvapi.Op{t.Success, t.Failure} {
		for _, o := range ops {
			size += len(o.Value)
		}
	}
	if size > s.cfg.MaxValueSize {
		return fmt.Errorf("%w: the transaction's values add up to %d bytes, limit %d", ErrValueTooBig, size, s.cfg.MaxValueSize)
	}
	return t.Keys(func(key []byte, _ bool) error { return ValidateKey(key) })
}

// authorizeTxn checks every key the transaction touches, whichever branch
// runs (like etcd): read access for compares and gets, read-write for
// puts and deletes.
func (s *Store) authorizeTxn(user string, t kvapi.Txn) error {
	return t.Keys(func(key []byte, write bool) error {
		need := auth.NeedRead
		if write {
			need = auth.NeedWrite
		}
		return s.auth.Allow(user, need, key)
	})
}

// applyTxn runs a transaction at index: its compares against the state
// before it, then one branch's ops in order, as one revision.
func (s *Store) applyTxn(t kvapi.Txn, index uint64) Result {
	if err := s.validateTxn(t); err != nil {
		return Result{Err: err}
	}
	ok := true
	for _, c := range t.Compare {
		ok = ok && s.holds(c)
	}
	ops := t.Failure
	if ok {
		ops = t.Success
	}
	resp := &kvapi.TxnResponse{Succeeded: ok, Revision: index, Results: make([]kvapi.OpResult, 0, len(ops))}
	var changes []kvapi.Change
	for _, o := range ops {
		key := string(o.Key)
		r := kvapi.OpResult{Kind: o.Kind}
		switch o.Kind {
		case kvapi.OpPut:
			v := bytes.Clone(o.Value)
			s.tree.ReplaceOrInsert(item{key: key, value: v, rev: index})
			r.Revision = index
			changes = append(changes, kvapi.Change{Type: kvapi.ChangePut, Key: []byte(key), Value: v})
		case kvapi.OpDelete:
			if _, r.Deleted = s.tree.Delete(item{key: key}); r.Deleted {
				changes = append(changes, kvapi.Change{Type: kvapi.ChangeDelete, Key: []byte(key)})
			}
		case kvapi.OpGet:
			if it, found := s.tree.Get(item{key: key}); found {
				r.Found, r.Value, r.Revision = true, it.value, it.rev
			}
		}
		resp.Results = append(resp.Results, r)
	}
	s.hist.record(index, changes)
	return Result{Revision: index, Txn: resp}
}

func (s *Store) holds(c kvapi.Compare) bool {
	it, exists := s.tree.Get(item{key: string(c.Key)})
	switch c.Kind {
	case kvapi.CompareRevision:
		return it.rev == c.Revision
	case kvapi.CompareValue:
		return exists && bytes.Equal(it.value, c.Value)
	}
	return exists == c.Exists
}

// encodeTxnResult is the session form of a transaction's result (the
// snapshot's section 7).
func encodeTxnResult(r *kvapi.TxnResponse) []byte {
	b := binary.AppendUvarint(nil, boolUint(r.Succeeded))
	b = binary.AppendUvarint(b, r.Revision)
	b = binary.AppendUvarint(b, uint64(len(r.Results)))
	for _, o := range r.Results {
		b = append(b, byte(o.Kind))
		b = binary.AppendUvarint(b, o.Revision)
		b = binary.AppendUvarint(b, boolUint(o.Deleted))
		b = binary.AppendUvarint(b, boolUint(o.Found))
		b = appendBytes(b, o.Value)
	}
	return b
}

func decodeTxnResult(b []byte) (*kvapi.TxnResponse, error) {
	d := decoder{b: b}
	r := &kvapi.TxnResponse{Succeeded: d.uvarint() == 1, Revision: d.uvarint()}
	n := d.uvarint()
	if n > kvapi.MaxTxnOps {
		return nil, fmt.Errorf("%w: %d op results", ErrBadSnapshot, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		o := kvapi.OpResult{Kind: kvapi.OpKind(d.byte()), Revision: d.uvarint(), Deleted: d.uvarint() == 1, Found: d.uvarint() == 1}
		if v := d.bytes(); o.Found {
			o.Value = bytes.Clone(v)
		}
		r.Results = append(r.Results, o)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("transaction result")
	}
	return r, d.err
}
