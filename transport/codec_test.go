package transport_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

var messageTypes = []raft.MessageType{
	raft.MsgApp, raft.MsgAppResp, raft.MsgVote, raft.MsgVoteResp, raft.MsgPreVote,
	raft.MsgPreVoteResp, raft.MsgHeartbeat, raft.MsgHeartbeatResp, raft.MsgSnap,
	raft.MsgReadIndex, raft.MsgReadIndexResp, raft.MsgTimeoutNow, raft.MsgProp, raft.MsgPropResp,
}

// genBytes draws nil or a byte slice: the codec does not tell nil from
// empty, so the generator never makes an empty non-nil slice.
func genBytes(t *rapid.T, label string) []byte {
	b := rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, label)
	if len(b) == 0 {
		return nil
	}
	return b
}

// genU64 draws small values most of the time and any uint64 sometimes, so
// varints of every length show up.
func genU64() *rapid.Generator[uint64] {
	return rapid.OneOf(rapid.Uint64Range(0, 300), rapid.Uint64())
}

func genIDs(t *rapid.T, label string) []uint64 {
	ids := rapid.SliceOfN(genU64(), 0, 9).Draw(t, label)
	if len(ids) == 0 {
		return nil
	}
	return ids
}

func genMessage(t *rapid.T) raft.Message {
	m := raft.Message{
		Type:       rapid.SampledFrom(messageTypes).Draw(t, "type"),
		From:       genU64().Draw(t, "from"),
		To:         genU64().Draw(t, "to"),
		Term:       genU64().Draw(t, "term"),
		LogTerm:    genU64().Draw(t, "logTerm"),
		Index:      genU64().Draw(t, "index"),
		Commit:     genU64().Draw(t, "commit"),
		Reject:     rapid.Bool().Draw(t, "reject"),
		RejectHint: genU64().Draw(t, "rejectHint"),
		ReadRound:  genU64().Draw(t, "readRound"),
		Context:    genBytes(t, "context"),
	}
	for i := range rapid.IntRange(0, 8).Draw(t, "entries") {
		_ = i
		m.Entries = append(m.Entries, raft.Entry{
			Term:  genU64().Draw(t, "entry.term"),
			Index: genU64().Draw(t, "entry.index"),
			Type:  raft.EntryType(rapid.Byte().Draw(t, "entry.type")),
			Data:  genBytes(t, "entry.data"),
		})
	}
	if rapid.Bool().Draw(t, "snapshot") {
		m.Snapshot = &raft.Snapshot{Meta: raft.SnapshotMeta{
			Index: genU64().Draw(t, "snap.index"),
			Term:  genU64().Draw(t, "snap.term"),
			Membership: raft.Membership{
				Voters:   genIDs(t, "snap.voters"),
				Learners: genIDs(t, "snap.learners"),
			},
		}}
		if rapid.Bool().Draw(t, "snap.extended") {
			// Joint consensus, staging learners and peer addresses
			// (thesis §4) travel too.
			mb := &m.Snapshot.Meta.Membership
			mb.Outgoing = genIDs(t, "snap.outgoing")
			mb.Staging = genIDs(t, "snap.staging")
			for _, id := range genIDs(t, "snap.contexts") {
				if mb.Contexts == nil {
					mb.Contexts = map[uint64][]byte{}
				}
				mb.Contexts[id] = append([]byte("h:"), genBytes(t, "snap.context")...)
			}
		}
	}
	return m
}

// TestMessageRoundTrip: decode(encode(m)) == m for every message, and the
// encoding is the whole input (appending to a prefix leaves it intact).
func TestMessageRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMessage(t)
		prefix := genBytes(t, "prefix")
		b := transport.AppendMessage(bytes.Clone(prefix), m)
		if !bytes.Equal(b[:len(prefix)], prefix) {
			t.Fatalf("AppendMessage changed the prefix")
		}
		got, err := transport.DecodeMessage(b[len(prefix):])
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
		}
	})
}

// TestMessageSnapshotDataNotEncoded: the body travels out of band.
func TestMessageSnapshotDataNotEncoded(t *testing.T) {
	m := raft.Message{Type: raft.MsgSnap, Snapshot: &raft.Snapshot{
		Meta: raft.SnapshotMeta{Index: 7, Term: 2, Membership: raft.NewMembership(1, 2, 3)},
		Data: []byte("the body"),
	}}
	got, err := transport.DecodeMessage(transport.AppendMessage(nil, m))
	if err != nil {
		t.Fatal(err)
	}
	if got.Snapshot.Data != nil || !reflect.DeepEqual(got.Snapshot.Meta, m.Snapshot.Meta) {
		t.Fatalf("got snapshot %+v, want meta %+v and no data", got.Snapshot, m.Snapshot.Meta)
	}
}

// TestDecodeDataIsCapped: appending to one decoded Data never overwrites
// the bytes of the next entry, though they share the frame buffer.
func TestDecodeDataIsCapped(t *testing.T) {
	m := raft.Message{Type: raft.MsgApp, Entries: []raft.Entry{{Data: []byte("aa")}, {Data: []byte("bb")}}}
	got, err := transport.DecodeMessage(transport.AppendMessage(nil, m))
	if err != nil {
		t.Fatal(err)
	}
	_ = append(got.Entries[0].Data, "XXXXXXXX"...)
	if string(got.Entries[1].Data) != "bb" {
		t.Fatalf("entry 1 data = %q after appending to entry 0", got.Entries[1].Data)
	}
}

func TestDecodeMalformed(t *testing.T) {
	valid := transport.AppendMessage(nil, raft.Message{
		Type: raft.MsgApp, Term: 3, Entries: []raft.Entry{{Term: 3, Index: 9, Data: []byte("xyz")}},
	})
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"type only", []byte{byte(raft.MsgApp)}},
		{"type zero", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"unknown type", []byte{200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"unknown flag", []byte{byte(raft.MsgApp), 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"varint overflow", append([]byte{byte(raft.MsgApp), 0}, bytes.Repeat([]byte{0xff}, 11)...)},
		{"context past end", []byte{byte(raft.MsgApp), 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 'a'}},
		{"huge entry count", append([]byte{byte(raft.MsgApp), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0x0f)},
		{"snapshot flag, no meta", []byte{byte(raft.MsgSnap), 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"truncated", valid[:len(valid)-1]},
		{"trailing byte", append(bytes.Clone(valid), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := transport.DecodeMessage(tt.in)
			if !errors.Is(err, transport.ErrMalformed) {
				t.Fatalf("DecodeMessage(%x) = %v, %v; want ErrMalformed", tt.in, m, err)
			}
		})
	}
}

// msgApp64 is the hot-path message: 64 entries of 128 bytes.
func msgApp64() raft.Message {
	m := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 7, LogTerm: 7, Index: 100_000, Commit: 99_990}
	for i := range 64 {
		m.Entries = append(m.Entries, raft.Entry{Term: 7, Index: uint64(100_001 + i), Data: bytes.Repeat([]byte{byte(i)}, 128)})
	}
	return m
}

func BenchmarkEncodeMsgApp(b *testing.B) {
	m := msgApp64()
	buf := transport.AppendMessageFrame(nil, m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = transport.AppendMessageFrame(buf[:0], m)
	}
}

func BenchmarkDecodeMsgApp(b *testing.B) {
	payload := transport.AppendMessage(nil, msgApp64())
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := transport.DecodeMessage(payload); err != nil {
			b.Fatal(err)
		}
	}
}
