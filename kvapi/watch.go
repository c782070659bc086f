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
//
// After a watch could not resume (its start was compacted: the node no
// longer has the changes), a Reset event carries instead the whole state
// of the prefix at Revision, one put per key: forget what you knew of the
// prefix and take this; the events after it follow on from it, so a user
// misses nothing. (A listing too large for one page is read in pages, and
// the events right after a Reset may repeat changes it already holds.)
type Event struct {
	Revision uint64
	Changes  []Change
	Reset    bool
	Err      error
}

// ResetEvent lists the whole prefix, page by page, with list (a client's
// or a node's List) and returns it as a Reset event, at the revision of
// the first page: a watch goes on from Revision+1.
func ResetEvent(prefix []byte, list func(ListOptions) (ListResult, error)) (Event, error) {
	ev := Event{Reset: true}
	o := ListOptions{Limit: MaxListLimit}
	for first := true; ; first = false {
		page, err := list(o)
		if err != nil {
			return Event{}, err
		}
		if first {
			ev.Revision = page.Revision
		}
		for _, kv := range page.KVs {
			ev.Changes = append(ev.Changes, Change{Type: ChangePut, Key: kv.Key, Value: kv.Value})
		}
		if !page.More || len(page.KVs) == 0 {
			return ev, nil
		}
		o.StartAfter = page.KVs[len(page.KVs)-1].Key
	}
}
