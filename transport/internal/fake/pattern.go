package fake

import (
	"bytes"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

// The pattern byte at offset i is byte(i % patternPeriod); block holds a
// whole number of periods so any offset can be copied from it.
const patternPeriod = 251

var block = func() []byte {
	b := make([]byte, patternPeriod*256)
	for i := range b {
		b[i] = byte(i % patternPeriod)
	}
	return b
}()

// Pattern is a snapshot body of Size bytes generated as it is read, so a
// test can stream a large body that is never held in memory.
type Pattern struct {
	size int64
	off  atomic.Int64 // bytes produced so far
}

// NewPattern returns a body of size bytes.
func NewPattern(size int64) *Pattern { return &Pattern{size: size} }

// Produced reports how many bytes have been read from p so far.
func (p *Pattern) Produced() int64 { return p.off.Load() }

func (p *Pattern) Read(b []byte) (int, error) {
	off := p.off.Load()
	if off >= p.size {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.size-off)]
	n := 0
	for n < len(b) {
		n += copy(b[n:], block[(off+int64(n))%int64(len(block)):])
	}
	p.off.Add(int64(n))
	return n, nil
}

// Close does nothing; Pattern is an io.ReadCloser for SnapshotSource.
func (p *Pattern) Close() error { return nil }

var _ transport.SnapshotSource = Source(nil)

// Checker is an io.Writer that checks what is written to it continues the
// pattern; Written says how much has been.
type Checker struct{ Written int64 }

func (c *Checker) Write(b []byte) (int, error) {
	if !bytes.Equal(b, expected(c.Written, len(b))) {
		return 0, fmt.Errorf("body differs from the pattern in [%d, %d)", c.Written, c.Written+int64(len(b)))
	}
	c.Written += int64(len(b))
	return len(b), nil
}

func expected(off int64, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		start := (off + int64(len(out))) % int64(len(block))
		out = append(out, block[start:min(len(block), int(start)+n-len(out))]...)
	}
	return out
}

// Source is a transport.SnapshotSource made of a function.
type Source func(meta raft.SnapshotMeta) (io.ReadCloser, int64, error)

// OpenSnapshot calls s.
func (s Source) OpenSnapshot(meta raft.SnapshotMeta) (io.ReadCloser, int64, error) { return s(meta) }

// CheckPattern reads r to its end, checking it is the pattern, and returns
// its length.
func CheckPattern(r io.Reader) (int64, error) { return io.Copy(&Checker{}, r) }
