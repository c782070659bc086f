package kvapi

import (
	"bytes"
	"encoding/json"
	"io"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// ChangeType is what a Change did to its key.
type ChangeType uint8

const (
	ChangePut    ChangeType = 1
	ChangeDelete ChangeType = 2
)

func (t ChangeType) String() string {
	if t == ChangeDelete {
		return "delete"
	}
	return "put"
}

// Change is one key's change at a revision: a put with its value, or a
// delete.
type Change struct {
	Type  ChangeType
	Key   []byte
	Value []byte
}

// MarshalJSON gives {"type","key","value"} (value absent for a delete).
func (c Change) MarshalJSON() ([]byte, error) {
	m := KeyJSON(c.Key)
	m["type"] = c.Type.String()
	if c.Type == ChangePut {
		m["value"] = c.Value
		if c.Value == nil {
			m["value"] = []byte{}
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *Change) UnmarshalJSON(b []byte) error {
	var v struct {
		jsonKey
		Type  string `json:"type"`
		Value []byte `json:"value"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	key, err := v.key()
	*c = Change{Type: ChangePut, Key: key, Value: v.Value}
	if v.Type == "delete" {
		c.Type = ChangeDelete
	}
	return err
}

// Event is what a watch delivers: the changes one revision made to the
// watched keys, in revision order, each revision once. An Event with Err
// set is the last one: the watch ended (a *CompactedError when the
// client could not resume, a permission error, ...).
type Event struct {
	Revision uint64
	Changes  []Change
	Err      error
}
