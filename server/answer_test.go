package server

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"testing"
)

// The hand-encoded answers of puts and deletes are byte for byte what
// writeJSON gives for the same fields.
func TestHandEncodedAnswersMatchWriteJSON(t *testing.T) {
	for _, rev := range []uint64{0, 1, 42, math.MaxUint64} {
		for _, deleted := range []bool{false, true} {
			want := httptest.NewRecorder()
			writeJSON(want, 200, map[string]any{"deleted": deleted, "revision": rev})
			got := httptest.NewRecorder()
			writeDeleted(got, deleted, rev)
			same(t, got, want)
		}
		want := httptest.NewRecorder()
		writeJSON(want, 200, map[string]uint64{"revision": rev})
		got := httptest.NewRecorder()
		writeRevision(got, rev)
		same(t, got, want)
		var decoded struct{ Revision uint64 }
		if err := json.Unmarshal(got.Body.Bytes(), &decoded); err != nil || decoded.Revision != rev {
			t.Errorf("%q decodes to %d, %v", got.Body, decoded.Revision, err)
		}
	}
}

func same(t *testing.T, got, want *httptest.ResponseRecorder) {
	t.Helper()
	if got.Code != want.Code || got.Body.String() != want.Body.String() || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
		t.Errorf("got %d %q (%s), want %d %q (%s)", got.Code, got.Body, got.Header().Get("Content-Type"),
			want.Code, want.Body, want.Header().Get("Content-Type"))
	}
}
