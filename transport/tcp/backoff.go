package tcp

import (
	"math/rand/v2"
	"time"
)

// backoff returns the pause before reconnect attempt n (n >= 1 failures so
// far): lo·2^(n-1), capped at hi, then jittered into [d/2, d] so peers that
// failed together do not retry together. rnd(k) returns a value in [0, k).
func backoff(n int, lo, hi time.Duration, rnd func(int64) int64) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + time.Duration(rnd(int64(d-half)+1))
}

// jitter is the rnd of backoff in production.
var jitter = rand.Int64N
