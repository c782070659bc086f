package transport

import (
	"encoding/binary"
	"fmt"
)

// MaxClusterIDLen bounds a cluster id on the wire. Part of the wire format.
const MaxClusterIDLen = 255

// StreamKind says what a connection carries after the handshake. The values
// are part of the wire format.
type StreamKind uint8

const (
	// StreamMessages carries KindMessage frames from dialer to acceptor.
	StreamMessages StreamKind = 1
	// StreamSnapshot carries one MsgSnap and its body, then the result.
	StreamSnapshot StreamKind = 2
)

func (s StreamKind) String() string {
	switch s {
	case StreamMessages:
		return "messages"
	case StreamSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("StreamKind(%d)", uint8(s))
}

// Hello opens a connection: who dials whom, in which cluster, for what.
type Hello struct {
	Stream    StreamKind
	ClusterID string
	From      uint64 // the dialer
	To        uint64 // the node the dialer believes it reached
}

// AppendHello appends the encoding of h (a KindHello payload) to dst. A
// cluster id longer than MaxClusterIDLen does not decode; tcp.Config's
// Validate refuses one.
func AppendHello(dst []byte, h Hello) []byte {
	dst = append(dst, byte(h.Stream))
	dst = binary.AppendUvarint(dst, h.From)
	dst = binary.AppendUvarint(dst, h.To)
	return appendBytes(dst, []byte(h.ClusterID))
}

// DecodeHello decodes a KindHello payload; errors wrap ErrMalformed.
func DecodeHello(b []byte) (Hello, error) {
	d := decoder{b: b}
	h := Hello{Stream: StreamKind(d.byte())}
	h.From = d.uvarint()
	h.To = d.uvarint()
	id := d.bytes()
	switch {
	case d.err != nil:
	case h.Stream != StreamMessages && h.Stream != StreamSnapshot:
		d.fail("unknown stream kind %d", uint8(h.Stream))
	case len(id) > MaxClusterIDLen:
		d.fail("cluster id of %d bytes, maximum %d", len(id), MaxClusterIDLen)
	case len(d.b) > 0:
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return Hello{}, d.err
	}
	h.ClusterID = string(id)
	return h, nil
}
