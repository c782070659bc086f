package transport

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/raftex/raftex/raft"
)

// Version is the frame format version, the first byte of every frame.
// Part of the wire format: bump it on any incompatible change.
const Version = 1

// FrameHeaderSize is the size of a frame header: version, kind, length,
// checksum. Part of the wire format.
const FrameHeaderSize = 10

// FrameKind says what a frame's payload holds. The values are part of the
// wire format and must never change.
type FrameKind uint8

const (
	KindHello          FrameKind = 1 // opens a connection (Hello)
	KindAccept         FrameKind = 2 // the acceptor takes the connection
	KindRefuse         FrameKind = 3 // the acceptor refuses it; payload is the reason
	KindMessage        FrameKind = 4 // one raft.Message (AppendMessage)
	KindSnapshotChunk  FrameKind = 5 // the next bytes of a snapshot body
	KindSnapshotEnd    FrameKind = 6 // end of the body; payload is its length
	KindSnapshotResult FrameKind = 7 // the receiver stored the body (1) or not (0)
)

var kindNames = [...]string{
	KindHello: "hello", KindAccept: "accept", KindRefuse: "refuse", KindMessage: "message",
	KindSnapshotChunk: "snapshot-chunk", KindSnapshotEnd: "snapshot-end", KindSnapshotResult: "snapshot-result",
}

func (k FrameKind) String() string {
	if k.valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("FrameKind(%d)", uint8(k))
}

func (k FrameKind) valid() bool { return k >= KindHello && k <= KindSnapshotResult }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// kindCRC[k] is the CRC-32C of the single byte k, where a frame's checksum
// starts (precomputed so checksumming never allocates).
var kindCRC = func() (t [256]uint32) {
	for k := range t {
		t[k] = crc32.Checksum([]byte{byte(k)}, castagnoli)
	}
	return t
}()

func checksum(kind FrameKind, payload []byte) uint32 {
	return crc32.Update(kindCRC[kind], castagnoli, payload)
}

// SealFrame writes the header of frame, whose first FrameHeaderSize bytes
// are reserved for it and whose rest is the payload. Use it to build a
// frame in place (read a chunk into frame[FrameHeaderSize:], then seal).
func SealFrame(frame []byte, kind FrameKind) {
	payload := frame[FrameHeaderSize:]
	frame[0] = Version
	frame[1] = byte(kind)
	binary.BigEndian.PutUint32(frame[2:6], uint32(len(payload)))
	binary.BigEndian.PutUint32(frame[6:10], checksum(kind, payload))
}

// AppendFrame appends a frame of kind holding payload to dst.
func AppendFrame(dst []byte, kind FrameKind, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, FrameHeaderSize)...)
	dst = append(dst, payload...)
	SealFrame(dst[start:], kind)
	return dst
}

// AppendMessageFrame appends a KindMessage frame holding m to dst, encoding
// m in place: with a reused dst it does not allocate.
func AppendMessageFrame(dst []byte, m raft.Message) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, FrameHeaderSize)...)
	dst = AppendMessage(dst, m)
	SealFrame(dst[start:], KindMessage)
	return dst
}

// FrameReader reads frames from a stream. Not safe for concurrent use.
type FrameReader struct {
	r   io.Reader
	max uint32
	hdr [FrameHeaderSize]byte
}

// NewFrameReader returns a reader of frames from r whose payloads are at
// most max bytes. Wrap a network connection in a bufio.Reader first: the
// reader makes two reads per frame.
func NewFrameReader(r io.Reader, max uint32) *FrameReader {
	return &FrameReader{r: r, max: max}
}

// Next reads the next frame and returns its kind and payload. The payload
// is read into buf if it has the capacity, else into a new slice; pass nil
// when the payload will outlive the next call (DecodeMessage keeps
// sub-slices of it).
//
// Errors: io.EOF only at a frame boundary; io.ErrUnexpectedEOF for a
// truncated frame; ErrVersion, ErrFrameKind, ErrFrameTooLarge (checked
// before the payload is read) or ErrChecksum, wrapped with the details;
// or the underlying reader's error.
func (r *FrameReader) Next(buf []byte) (FrameKind, []byte, error) {
	// The version byte is read alone so a peer speaking another protocol
	// is refused at its first byte.
	if _, err := io.ReadFull(r.r, r.hdr[:1]); err != nil {
		return 0, nil, err
	}
	if r.hdr[0] != Version {
		return 0, nil, fmt.Errorf("%w: %d, want %d", ErrVersion, r.hdr[0], Version)
	}
	if _, err := io.ReadFull(r.r, r.hdr[1:]); err != nil {
		return 0, nil, unexpected(err)
	}
	kind := FrameKind(r.hdr[1])
	n := binary.BigEndian.Uint32(r.hdr[2:6])
	sum := binary.BigEndian.Uint32(r.hdr[6:10])
	if !kind.valid() {
		return 0, nil, fmt.Errorf("%w: %d", ErrFrameKind, uint8(kind))
	}
	if n > r.max {
		return 0, nil, fmt.Errorf("%w: %s frame of %d bytes, maximum %d", ErrFrameTooLarge, kind, n, r.max)
	}
	if uint32(cap(buf)) >= n {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(r.r, buf); err != nil {
		return 0, nil, unexpected(err)
	}
	if got := checksum(kind, buf); got != sum {
		return 0, nil, fmt.Errorf("%w: %s frame of %d bytes: crc %#08x, header says %#08x", ErrChecksum, kind, n, got, sum)
	}
	return kind, buf, nil
}

// unexpected turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
