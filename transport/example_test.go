package transport_test

import (
	"bytes"
	"fmt"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

// A message travels as one frame: encode it in place, read it back.
func Example() {
	m := raft.Message{Type: raft.MsgApp, From: 1, To: 2, Term: 3, Index: 10, LogTerm: 3, Commit: 10,
		Entries: []raft.Entry{{Term: 3, Index: 11, Data: []byte("set x=1")}}}
	frame := transport.AppendMessageFrame(nil, m)

	r := transport.NewFrameReader(bytes.NewReader(frame), 1<<20)
	kind, payload, err := r.Next(nil) // nil: the message keeps sub-slices of payload
	if err != nil {
		panic(err)
	}
	got, err := transport.DecodeMessage(payload)
	if err != nil {
		panic(err)
	}
	fmt.Println(kind, len(frame), "bytes:", got, string(got.Entries[0].Data))
	// Output: message 33 bytes: AppendEntries 1→2 term=3 prev=10/3 entries=1 commit=10 set x=1
}
