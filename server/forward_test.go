package server

import (
	"errors"
	"fmt"
	"testing"

	"github.com/raftex/raftex/kv"
)

// A state machine's error survives the trip from the leader to the
// follower that forwarded the write: same sentinel, same message (once).
func TestForwardedResultErrorsRoundTrip(t *testing.T) {
	cases := []error{
		kv.ErrKeyEmpty,
		kv.ErrKeyTooLong,
		fmt.Errorf("%w: 2000000 bytes, limit 1048576", kv.ErrValueTooBig),
		fmt.Errorf("%w: request 1, the session's newest is 300", kv.ErrSessionStale),
		fmt.Errorf("%w: unknown op 9", kv.ErrBadCommand),
	}
	for _, want := range cases {
		fr := forwardedResult{Error: want.Error(), Code: resultErrorCode(want)}
		got := decodeResultError(fr)
		if got == nil || got.Error() != want.Error() || !errors.Is(got, errors.Unwrap(want)) && !errors.Is(got, want) {
			t.Errorf("%v came back as %v", want, got)
		}
	}
	mismatch := &kv.CASMismatchError{Revision: 7}
	fr := forwardedResult{Revision: 7, Error: mismatch.Error(), Code: resultErrorCode(mismatch)}
	var got *kv.CASMismatchError
	if err := decodeResultError(fr); !errors.As(err, &got) || got.Revision != 7 {
		t.Errorf("CAS mismatch came back as %v", err)
	}
	if err := decodeResultError(forwardedResult{Revision: 3}); err != nil {
		t.Errorf("success came back as %v", err)
	}
}
