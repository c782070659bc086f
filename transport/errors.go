package transport

import "errors"

// Errors of the wire format. Decoders wrap them with the detail that
// failed, so callers test with errors.Is.
var (
	// ErrVersion is returned for a frame whose version byte is not Version:
	// the peer speaks another protocol (or none).
	ErrVersion = errors.New("transport: unsupported frame version")
	// ErrFrameKind is returned for a frame of unknown kind.
	ErrFrameKind = errors.New("transport: unknown frame kind")
	// ErrFrameTooLarge is returned for a frame longer than the reader's
	// maximum; nothing of it has been read or allocated.
	ErrFrameTooLarge = errors.New("transport: frame exceeds the maximum size")
	// ErrChecksum is returned for a frame whose payload does not match its
	// checksum.
	ErrChecksum = errors.New("transport: frame checksum mismatch")
	// ErrMalformed is returned for a payload that does not decode: a bad
	// varint, a length past the end, trailing bytes, an unknown message
	// type or flag.
	ErrMalformed = errors.New("transport: malformed payload")
)

// Errors of the Transport lifecycle, shared by the implementations.
var (
	// ErrStarted is returned by a second Start.
	ErrStarted = errors.New("transport: already started")
	// ErrStopped is returned by Start after Stop, and wrapped by work cut
	// short by Stop.
	ErrStopped = errors.New("transport: stopped")
)
