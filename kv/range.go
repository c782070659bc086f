package kv

import (
	"bytes"
	"strings"

	"github.com/raftex/raftex/kvapi"
)

// List returns the keys under prefix in byte order, one page of them
// (kvapi.ListOptions: at most Limit keys and about kvapi.MaxListBytes),
// and the revision the listing reflects: the last entry applied. The
// values must not be modified.
func (s *Store) List(prefix []byte, o kvapi.ListOptions) kvapi.ListResult {
	limit := o.Limit
	if limit <= 0 {
		limit = kvapi.DefaultListLimit
	}
	limit = min(limit, kvapi.MaxListLimit)
	start := string(prefix)
	if o.StartAfter != nil && string(o.StartAfter) >= start {
		start = string(o.StartAfter) + "\x00" // the least key after it
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	res := kvapi.ListResult{KVs: []kvapi.KeyValue{}, Revision: s.applied}
	size := 0
	s.tree.AscendGreaterOrEqual(item{key: start}, func(it item) bool {
		if !strings.HasPrefix(it.key, string(prefix)) {
			return false
		}
		if len(res.KVs) == limit || size >= kvapi.MaxListBytes {
			res.More = true
			return false
		}
		kv := kvapi.KeyValue{Key: []byte(it.key), Revision: it.rev}
		if !o.KeysOnly {
			kv.Value = it.value
		}
		size += len(kv.Key) + len(kv.Value)
		res.KVs = append(res.KVs, kv)
		return true
	})
	return res
}

// DeletePrefix returns the command that deletes every key under prefix
// (every key for an empty one) as one revision.
func DeletePrefix(prefix []byte) Command { return Command{Op: OpDeletePrefix, Key: prefix} }

func (s *Store) applyDeletePrefix(prefix []byte, index uint64) Result {
	if len(prefix) > MaxKeySize {
		return Result{Err: ErrKeyTooLong}
	}
	var doomed []item
	s.tree.AscendGreaterOrEqual(item{key: string(prefix)}, func(it item) bool {
		if !bytes.HasPrefix([]byte(it.key), prefix) {
			return false
		}
		doomed = append(doomed, it)
		return true
	})
	changes := make([]kvapi.Change, 0, len(doomed))
	for _, it := range doomed {
		s.tree.Delete(it)
		changes = append(changes, kvapi.Change{Type: kvapi.ChangeDelete, Key: []byte(it.key)})
	}
	s.hist.record(index, changes)
	return Result{Revision: index, Count: uint64(len(doomed))}
}
