package transport_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

func TestFrameRoundTrip(t *testing.T) {
	var stream []byte
	m := raft.Message{Type: raft.MsgHeartbeat, From: 1, To: 2, Term: 4, Commit: 9, ReadRound: 3}
	stream = transport.AppendMessageFrame(stream, m)
	stream = transport.AppendFrame(stream, transport.KindSnapshotChunk, []byte("body"))
	stream = transport.AppendFrame(stream, transport.KindAccept, nil)

	r := transport.NewFrameReader(bytes.NewReader(stream), 1<<10)
	kind, payload, err := r.Next(nil)
	if err != nil || kind != transport.KindMessage {
		t.Fatalf("frame 1: %v %v", kind, err)
	}
	if got, err := transport.DecodeMessage(payload); err != nil || got.String() != m.String() {
		t.Fatalf("frame 1 message = %v, %v; want %v", got, err, m)
	}
	kind, payload, err = r.Next(nil)
	if err != nil || kind != transport.KindSnapshotChunk || string(payload) != "body" {
		t.Fatalf("frame 2: %v %q %v", kind, payload, err)
	}
	kind, payload, err = r.Next(nil)
	if err != nil || kind != transport.KindAccept || len(payload) != 0 {
		t.Fatalf("frame 3: %v %q %v", kind, payload, err)
	}
	if _, _, err := r.Next(nil); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// TestFrameReuse: Next reads into the caller's buffer when it fits.
func TestFrameReuse(t *testing.T) {
	stream := transport.AppendFrame(nil, transport.KindSnapshotChunk, []byte("abc"))
	buf := make([]byte, 0, 8)
	_, payload, err := transport.NewFrameReader(bytes.NewReader(stream), 8).Next(buf)
	if err != nil || &payload[0] != &buf[:1][0] {
		t.Fatalf("payload %q not read into the given buffer (err %v)", payload, err)
	}
}

func TestFrameErrors(t *testing.T) {
	good := transport.AppendFrame(nil, transport.KindSnapshotChunk, []byte("payload"))
	corrupt := func(i int, b byte) []byte {
		c := bytes.Clone(good)
		c[i] = b
		return c
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"bad version", corrupt(0, 9), transport.ErrVersion},
		{"http", []byte("GET / HTTP/1.1\r\n\r\n"), transport.ErrVersion},
		{"unknown kind", corrupt(1, 99), transport.ErrFrameKind},
		{"kind zero", corrupt(1, 0), transport.ErrFrameKind},
		{"oversized", corrupt(2, 0x7f), transport.ErrFrameTooLarge},
		{"bad checksum", corrupt(len(good)-1, 'X'), transport.ErrChecksum},
		{"kind changed", corrupt(1, byte(transport.KindMessage)), transport.ErrChecksum},
		{"truncated header", good[:5], io.ErrUnexpectedEOF},
		{"truncated payload", good[:len(good)-2], io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := transport.NewFrameReader(bufio.NewReader(bytes.NewReader(tt.in)), 64)
			if _, _, err := r.Next(nil); !errors.Is(err, tt.want) {
				t.Fatalf("Next = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestFrameTooLargeAllocatesNothing: a header claiming 4 GiB is refused
// before anything is read or allocated.
func TestFrameTooLargeAllocatesNothing(t *testing.T) {
	hdr := []byte{transport.Version, byte(transport.KindMessage), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}
	allocs := testing.AllocsPerRun(10, func() {
		r := bytes.NewReader(hdr)
		fr := transport.NewFrameReader(r, 1<<20)
		if _, _, err := fr.Next(nil); !errors.Is(err, transport.ErrFrameTooLarge) {
			t.Fatalf("Next = %v", err)
		}
	})
	// The reader, the bytes.Reader and the wrapped error; never 4 GiB.
	if allocs > 8 {
		t.Fatalf("%v allocations", allocs)
	}
}

func TestHelloRoundTrip(t *testing.T) {
	h := transport.Hello{Stream: transport.StreamSnapshot, ClusterID: "prod-eu", From: 3, To: 1 << 40}
	got, err := transport.DecodeHello(transport.AppendHello(nil, h))
	if err != nil || got != h {
		t.Fatalf("got %+v, %v; want %+v", got, err, h)
	}
	for _, bad := range []transport.Hello{
		{Stream: 0, ClusterID: "c", From: 1, To: 2},
		{Stream: transport.StreamMessages, ClusterID: string(make([]byte, 256)), From: 1, To: 2},
	} {
		if _, err := transport.DecodeHello(transport.AppendHello(nil, bad)); !errors.Is(err, transport.ErrMalformed) {
			t.Errorf("DecodeHello(%+v) = %v, want ErrMalformed", bad, err)
		}
	}
}
