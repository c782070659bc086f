package client

import (
	"errors"
	"fmt"
	"io"
)

// Bounds on what the client reads of an answer, so that an endpoint that
// is no raftex node (a stranger posing as a member to `serve --join`, say)
// cannot make it hold unbounded memory. A key-value answer is at most a
// value, a range page (kvapi.MaxListBytes, in base64) or a transaction's
// reads; every other answer is small.
const (
	maxAnswer      = 256 << 20
	maxSmallAnswer = 1 << 20
)

// ErrAnswerTooLarge is an answer beyond its bound. The call tries another
// endpoint, as for an answer cut off.
var ErrAnswerTooLarge = errors.New("client: answer too large")

// capped reads r up to max bytes and fails with ErrAnswerTooLarge beyond.
func capped(r io.Reader, max int64) io.Reader { return &cappedReader{r: r, left: max, max: max} }

type cappedReader struct {
	r         io.Reader
	left, max int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		// At the bound: only the end of the answer may follow.
		var one [1]byte
		if n, err := c.r.Read(one[:]); n == 0 {
			return 0, err
		}
		return 0, fmt.Errorf("%w: more than %d bytes", ErrAnswerTooLarge, c.max)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
