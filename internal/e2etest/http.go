package e2etest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// Response is an HTTP answer, read whole.
type Response struct {
	Code   int
	Header http.Header
	Body   []byte
}

// Do sends method to url (used as it is: not cleaned, not re-escaped)
// with body (nil: none) and header pairs, and reads the answer whole.
func Do(client *http.Client, method, url string, body []byte, header ...string) (Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return Response{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Response{Code: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// Want returns an error unless the answer's status code is code.
func (r Response) Want(code int) error {
	if r.Code != code {
		return fmt.Errorf("status %d, want %d: %s", r.Code, code, r.Body)
	}
	return nil
}

// Fields decodes a JSON object body, failing the test unless the body is
// one and says so in its Content-Type.
func (r Response) Fields(t testing.TB) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %q", ct, r.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.Body, err)
	}
	return m
}

// Revision returns the "revision" of a JSON body (a write's, or the
// key's current one in a 409), failing the test if it has none.
func (r Response) Revision(t testing.TB) uint64 {
	t.Helper()
	var body struct {
		Revision *uint64 `json:"revision"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || body.Revision == nil {
		t.Fatalf("body %q has no revision (%v)", r.Body, err)
	}
	return *body.Revision
}
