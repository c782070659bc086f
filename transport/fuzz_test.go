package transport_test

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

// fuzzMaxFrame bounds frames in FuzzFrameReader.
const fuzzMaxFrame = 1 << 16

// FuzzDecodeMessage: any input decodes or errors, never panics, and what
// decodes survives a round trip. The committed corpus is under
// testdata/fuzz/FuzzDecodeMessage.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(transport.AppendMessage(nil, raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 3, Index: 4, LogTerm: 3,
		Commit: 4, Context: []byte("c"), Entries: []raft.Entry{{Term: 3, Index: 5, Data: []byte("x=1")}, {Term: 3, Index: 6}}}))
	f.Add(transport.AppendMessage(nil, raft.Message{Type: raft.MsgAppResp, Reject: true, RejectHint: 1 << 40}))
	f.Add(transport.AppendMessage(nil, raft.Message{Type: raft.MsgSnap, Snapshot: &raft.Snapshot{
		Meta: raft.SnapshotMeta{Index: 5, Term: 2, Membership: raft.Membership{Voters: []uint64{1, 2}, Learners: []uint64{3}}},
	}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := transport.DecodeMessage(b)
		if err != nil {
			return
		}
		again, err := transport.DecodeMessage(transport.AppendMessage(nil, m))
		if err != nil {
			t.Fatalf("re-encoded %v does not decode: %v", m, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed the message:\n got %#v\nwant %#v", again, m)
		}
	})
}

// FuzzFrameReader feeds any byte stream to the frame reader and decodes
// every frame it accepts: nothing panics, and an accepted frame re-encodes
// to the exact bytes it was read from. With fix set, the checksum of every
// complete frame is made valid first, so the fuzzer also explores payloads
// behind the checksum. The committed corpus is under
// testdata/fuzz/FuzzFrameReader.
func FuzzFrameReader(f *testing.F) {
	var stream []byte
	stream = transport.AppendFrame(stream, transport.KindHello, transport.AppendHello(nil,
		transport.Hello{Stream: transport.StreamMessages, ClusterID: "c1", From: 1, To: 2}))
	stream = transport.AppendMessageFrame(stream, raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 3})
	f.Add(stream, false)
	f.Add(stream, true)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix {
			sealAll(b)
		}
		in := bytes.NewReader(b)
		r := transport.NewFrameReader(in, fuzzMaxFrame)
		for {
			start := len(b) - in.Len()
			kind, payload, err := r.Next(nil)
			if err != nil {
				return
			}
			if got := transport.AppendFrame(nil, kind, payload); !bytes.Equal(got, b[start:len(b)-in.Len()]) {
				t.Fatalf("frame re-encodes to %x, read from %x", got, b[start:len(b)-in.Len()])
			}
			switch kind {
			case transport.KindMessage:
				_, _ = transport.DecodeMessage(payload)
			case transport.KindHello:
				_, _ = transport.DecodeHello(payload)
			}
		}
	})
}

// sealAll rewrites the header of every complete frame in b as SealFrame
// would: the version and checksum become valid.
func sealAll(b []byte) {
	for len(b) >= transport.FrameHeaderSize {
		n := binary.BigEndian.Uint32(b[2:6])
		if n > uint32(len(b)-transport.FrameHeaderSize) {
			return
		}
		end := transport.FrameHeaderSize + int(n)
		transport.SealFrame(b[:end], transport.FrameKind(b[1]))
		b = b[end:]
	}
}
