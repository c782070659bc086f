package server

import (
	"bytes"
	"net/http"
	"strings"
)

// jsonErrors turns the plain-text error answers of handlers this package
// does not write (http.Error in the file server, promhttp, ServeMux) into
// JSON: {"error": "<their text>"}, as docs/api.md promises for every
// error. Answers below 400, and anything not text/plain, pass through.
type jsonErrors struct {
	http.ResponseWriter
	code int          // the error status held back, 0 if none
	body bytes.Buffer // the error's text, while code != 0
}

func (j *jsonErrors) WriteHeader(code int) {
	h := j.ResponseWriter.Header()
	if code >= 400 && strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		j.code = code
		return
	}
	j.ResponseWriter.WriteHeader(code)
}

func (j *jsonErrors) Write(b []byte) (int, error) {
	if j.code != 0 {
		return j.body.Write(b)
	}
	return j.ResponseWriter.Write(b)
}

// finish writes the held-back error, if any, as JSON.
func (j *jsonErrors) finish() {
	if j.code == 0 {
		return
	}
	h := j.ResponseWriter.Header()
	h.Del("Content-Length")
	h.Del("X-Content-Type-Options")
	writeError(j.ResponseWriter, j.code, strings.TrimSpace(j.body.String()))
}

// Unwrap gives http.ResponseController the writer underneath (to flush an
// event stream).
func (j *jsonErrors) Unwrap() http.ResponseWriter { return j.ResponseWriter }
