package kvapi

import (
	"encoding/json"
	"errors"
	"fmt"
)

// CompareKind is what a Compare checks.
type CompareKind uint8

// CompareKind values are part of the log format (transactions live in the
// Raft log): never change them.
const (
	// CompareRevision: the key's revision is Revision (0: absent).
	CompareRevision CompareKind = 1
	// CompareValue: the key exists and its value is Value.
	CompareValue CompareKind = 2
	// CompareExists: the key exists (Exists true) or is absent (false).
	CompareExists CompareKind = 3
)

// Compare is one condition of a transaction.
type Compare struct {
	Kind     CompareKind
	Key      []byte
	Revision uint64
	Value    []byte
	Exists   bool
}

// RevisionIs holds when key's revision is rev (0: the key is absent).
func RevisionIs(key string, rev uint64) Compare {
	return Compare{Kind: CompareRevision, Key: []byte(key), Revision: rev}
}

// ValueIs holds when key exists with value.
func ValueIs(key string, value []byte) Compare {
	return Compare{Kind: CompareValue, Key: []byte(key), Value: value}
}

// Exists holds when key exists (exists true) or is absent (false).
func Exists(key string, exists bool) Compare {
	return Compare{Kind: CompareExists, Key: []byte(key), Exists: exists}
}

// MarshalJSON gives {"key","revision"}, {"key","value"} or {"key","exists"}.
func (c Compare) MarshalJSON() ([]byte, error) {
	m := KeyJSON(c.Key)
	switch c.Kind {
	case CompareRevision:
		m["revision"] = c.Revision
	case CompareValue:
		m["value"] = c.Value
		if c.Value == nil {
			m["value"] = []byte{}
		}
	case CompareExists:
		m["exists"] = c.Exists
	default:
		return nil, fmt.Errorf("kvapi: compare kind %d", c.Kind)
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes: exactly one of revision,
// value and exists.
func (c *Compare) UnmarshalJSON(b []byte) error {
	var v struct {
		jsonKey
		Revision *uint64 `json:"revision"`
		Value    *[]byte `json:"value"`
		Exists   *bool   `json:"exists"`
	}
	if err := strict(b, &v); err != nil {
		return err
	}
	key, err := v.key()
	if err != nil {
		return err
	}
	*c = Compare{Key: key}
	n := 0
	if v.Revision != nil {
		c.Kind, c.Revision, n = CompareRevision, *v.Revision, n+1
	}
	if v.Value != nil {
		c.Kind, c.Value, n = CompareValue, *v.Value, n+1
	}
	if v.Exists != nil {
		c.Kind, c.Exists, n = CompareExists, *v.Exists, n+1
	}
	if n != 1 {
		return errors.New(`a compare has exactly one of "revision", "value" and "exists"`)
	}
	return nil
}

// OpKind is what an Op does.
type OpKind uint8

// OpKind values are part of the log format: never change them.
const (
	OpPut    OpKind = 1
	OpDelete OpKind = 2
	OpGet    OpKind = 3
)

var opNames = map[OpKind]string{OpPut: "put", OpDelete: "delete", OpGet: "get"}

func (k OpKind) String() string {
	if s, ok := opNames[k]; ok {
		return s
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// Op is one operation of a transaction's branch.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte
}

// Put sets key to value.
func Put(key string, value []byte) Op { return Op{Kind: OpPut, Key: []byte(key), Value: value} }

// Delete removes key.
func Delete(key string) Op { return Op{Kind: OpDelete, Key: []byte(key)} }

// Get reads key.
func Get(key string) Op { return Op{Kind: OpGet, Key: []byte(key)} }

// MarshalJSON gives {"op","key","value"}.
func (o Op) MarshalJSON() ([]byte, error) {
	m := KeyJSON(o.Key)
	m["op"] = o.Kind.String()
	if o.Kind == OpPut {
		m["value"] = o.Value
		if o.Value == nil {
			m["value"] = []byte{}
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (o *Op) UnmarshalJSON(b []byte) error {
	var v struct {
		jsonKey
		Op    string `json:"op"`
		Value []byte `json:"value"`
	}
	if err := strict(b, &v); err != nil {
		return err
	}
	key, err := v.key()
	if err != nil {
		return err
	}
	*o = Op{Key: key, Value: v.Value}
	for k, name := range opNames {
		if name == v.Op {
			o.Kind = k
		}
	}
	switch {
	case o.Kind == 0:
		return fmt.Errorf(`op %q is not "put", "delete" or "get"`, v.Op)
	case o.Kind != OpPut && v.Value != nil:
		return fmt.Errorf(`a %s op has no "value"`, v.Op)
	}
	return nil
}

// Txn is a transaction: if every Compare holds, the Success ops run, else
// the Failure ops; atomically, as one log entry. Ops run in order, and a
// get sees the writes before it.
type Txn struct {
	Compare []Compare `json:"compare,omitempty"`
	Success []Op      `json:"success,omitempty"`
	Failure []Op      `json:"failure,omitempty"`
}

// Keys calls f with every key the transaction touches, in both branches
// (for validation and permission checks), and whether the op writes it
// (a put or delete) rather than reads it (a compare or a get); it
// returns f's first error.
func (t Txn) Keys(f func(key []byte, write bool) error) error {
	for _, c := range t.Compare {
		if err := f(c.Key, false); err != nil {
			return err
		}
	}
	for _, ops := range [][]Op{t.Success, t.Failure} {
		for _, o := range ops {
			if err := f(o.Key, o.Kind != OpGet); err != nil {
				return err
			}
		}
	}
	return nil
}

// TxnResponse is a transaction's outcome: which branch ran, the log index
// of the transaction, and one result per op of that branch.
type TxnResponse struct {
	Succeeded bool       `json:"succeeded"`
	Revision  uint64     `json:"revision"`
	Results   []OpResult `json:"results"`
}

// OpResult is an op's result: a put's Revision; a delete's Deleted; a
// get's Found, Value and Revision.
type OpResult struct {
	Kind     OpKind
	Revision uint64
	Deleted  bool
	Found    bool
	Value    []byte
}

// MarshalJSON gives put {"revision"}, delete {"deleted"}, get
// {"found","value","revision"}.
func (r OpResult) MarshalJSON() ([]byte, error) {
	switch r.Kind {
	case OpPut:
		return json.Marshal(map[string]any{"revision": r.Revision})
	case OpDelete:
		return json.Marshal(map[string]any{"deleted": r.Deleted})
	}
	m := map[string]any{"found": r.Found}
	if r.Found {
		m["value"] = r.Value
		if r.Value == nil {
			m["value"] = []byte{}
		}
		m["revision"] = r.Revision
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes; the kind is that of the
// fields present (a client knows it from its own ops).
func (r *OpResult) UnmarshalJSON(b []byte) error {
	var v struct {
		Revision *uint64 `json:"revision"`
		Deleted  *bool   `json:"deleted"`
		Found    *bool   `json:"found"`
		Value    []byte  `json:"value"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = OpResult{Value: v.Value}
	switch {
	case v.Found != nil:
		r.Kind, r.Found = OpGet, *v.Found
		if v.Revision != nil {
			r.Revision = *v.Revision
		}
	case v.Deleted != nil:
		r.Kind, r.Deleted = OpDelete, *v.Deleted
	case v.Revision != nil:
		r.Kind, r.Revision = OpPut, *v.Revision
	default:
		return errors.New("an op result has none of revision, deleted and found")
	}
	return nil
}

// strict decodes b into v refusing unknown fields.
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytesReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
