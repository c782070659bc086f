package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/raftex/raftex/kv"
)

// serveRaw is serve returning the body as text.
func serveRaw(s *Server, method, path, body string, header ...string) (int, string) {
	code, m := serve(s, method, path, body, header...)
	b, _ := json.Marshal(m)
	return code, string(b)
}

func TestRoutes_ListAndDeletePrefix(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, _ := oneNode(t, 0)
		for _, k := range []string{"a/1", "a/2", "a/%FF", "b"} {
			if code, body := serve(s, "PUT", "/v1/kv/"+k, "v-"+k); code != http.StatusOK {
				t.Fatalf("put %s = %d %v", k, code, body)
			}
		}
		code, body := serveRaw(s, "GET", "/v1/kv?prefix=a/&limit=2", "")
		want := `{"kvs":[{"key":"a/1","revision":3,"value":"di1hLzE="},{"key":"a/2","revision":4,"value":"di1hLzI="}],"more":true,"revision":6}`
		if code != http.StatusOK || body != want {
			t.Fatalf("list = %d %s, want %s", code, body, want)
		}
		// The next page, keys only: the key that is not UTF-8 as key_base64.
		code, body = serveRaw(s, "GET", "/v1/kv?prefix=a/&start_after=a/2&keys_only=true", "")
		if want := `{"kvs":[{"key_base64":"YS//","revision":5}],"more":false,"revision":6}`; code != http.StatusOK || body != want {
			t.Fatalf("second page = %d %s, want %s", code, body, want)
		}
		if code, body := serveRaw(s, "GET", "/v1/kv?prefix_base64=YS//&consistency=stale", ""); code != http.StatusOK || !strings.Contains(body, "YS//") {
			t.Fatalf("prefix_base64 = %d %s", code, body)
		}
		for _, bad := range []string{"limit=0", "limit=10001", "limit=x", "keys_only=maybe", "consistency=weird", "prefix=a&prefix_base64=YQ=="} {
			if code, body := serve(s, "GET", "/v1/kv?"+bad, ""); code != http.StatusBadRequest || body["error"] == nil {
				t.Errorf("list ?%s = %d %v, want 400 with an error", bad, code, body)
			}
		}
		for _, bad := range []string{"", "prefix=", "all=false"} {
			if code, body := serve(s, "DELETE", "/v1/kv?"+bad, ""); code != http.StatusBadRequest || body["error"] == nil {
				t.Errorf("delete ?%s = %d %v, want 400", bad, code, body)
			}
		}
		if code, body := serveRaw(s, "DELETE", "/v1/kv?prefix=a/", ""); code != http.StatusOK || body != `{"deleted":3,"revision":7}` {
			t.Fatalf("delete prefix = %d %s", code, body)
		}
		if code, body := serveRaw(s, "DELETE", "/v1/kv?all=true", ""); code != http.StatusOK || body != `{"deleted":1,"revision":8}` {
			t.Fatalf("delete all = %d %s", code, body)
		}
	})
}

func TestRoutes_Txn(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, _ := oneNode(t, 0)
		serve(s, "PUT", "/v1/kv/x", "1") // 1: the leader's entry, 2: the own session, 3: x
		txn := `{"compare":[{"key":"x","revision":3},{"key":"y","exists":false},{"key":"x","value":"MQ=="}],
			"success":[{"op":"put","key":"y","value":"Mg=="},{"op":"delete","key":"x"},{"op":"get","key":"y"},{"op":"get","key":"x"}],
			"failure":[{"op":"get","key":"x"}]}`
		code, body := serveRaw(s, "POST", "/v1/txn", txn)
		want := `{"results":[{"revision":4},{"deleted":true},{"found":true,"revision":4,"value":"Mg=="},{"found":false}],"revision":4,"succeeded":true}`
		if code != http.StatusOK || body != want {
			t.Fatalf("txn = %d %s, want %s", code, body, want)
		}
		// The same compares fail now: still 200, the failure branch.
		code, body = serveRaw(s, "POST", "/v1/txn", txn)
		if want := `{"results":[{"found":false}],"revision":5,"succeeded":false}`; code != http.StatusOK || body != want {
			t.Fatalf("failed compare = %d %s, want %s", code, body, want)
		}
		for _, bad := range []string{`{`, `{"compare":[{"key":"x"}]}`, `{"compare":[{"key":"x","revision":1,"exists":true}]}`,
			`{"success":[{"op":"cas","key":"x"}]}`, `{"success":[{"op":"get","key":""}]}`, `{"bogus":1}`, `{} {}`,
			`{"success":[{"op":"get","key":"x","key_base64":"eA=="}]}`} {
			if code, body := serve(s, "POST", "/v1/txn", bad); code != http.StatusBadRequest || body["error"] == nil {
				t.Errorf("txn %s = %d %v, want 400", bad, code, body)
			}
		}
		// Exactly once in a client session: the retry answers the first outcome.
		_, reg := serve(s, "POST", "/v1/sessions", "")
		id := jsonNumber(reg["client_id"].(float64))
		inc := `{"compare":[{"key":"n","exists":false}],"success":[{"op":"put","key":"n","value":"MQ=="}],"failure":[{"op":"put","key":"n","value":"Mg=="}]}`
		_, first := serveRaw(s, "POST", "/v1/txn", inc, HeaderClientID, id, HeaderSeq, "1")
		_, again := serveRaw(s, "POST", "/v1/txn", inc, HeaderClientID, id, HeaderSeq, "1")
		if first != again || !strings.Contains(first, `"succeeded":true`) {
			t.Fatalf("retry = %s, first %s", again, first)
		}
	})
}

// sse reads server-sent events from a watch stream.
type sse struct {
	c  net.Conn
	br *bufio.Reader
}

type sseEvent struct{ id, event, data, comment string }

func (e sseEvent) String() string {
	if e.comment != "" {
		return ":" + e.comment
	}
	return fmt.Sprintf("%s %s %s", e.id, e.event, e.data)
}

// watch opens GET path over l and checks the answer's status.
func watch(t *testing.T, l *pipeListener, path string, wantCode int, header ...string) *sse {
	t.Helper()
	c := l.dial()
	t.Cleanup(func() { c.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: n1\r\n"
	for i := 0; i+1 < len(header); i += 2 {
		req += header[i] + ": " + header[i+1] + "\r\n"
	}
	fmt.Fprint(c, req+"\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != wantCode {
		t.Fatalf("GET %s: %v %v, want %d", path, resp, err, wantCode)
	}
	if wantCode != http.StatusOK {
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		if body["compact_revision"] == nil && wantCode == http.StatusGone {
			t.Fatalf("410 without compact_revision: %v", body)
		}
		return nil
	}
	return &sse{c: c, br: bufio.NewReader(resp.Body)}
}

// next returns the next event or comment ("" at the end of the stream).
func (s *sse) next(t *testing.T) sseEvent {
	t.Helper()
	var e sseEvent
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			return e
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && e != (sseEvent{}):
			return e
		case line == "":
		case strings.HasPrefix(line, ":"):
			e.comment = strings.TrimSpace(line[1:])
		case strings.HasPrefix(line, "retry: "):
		default:
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "id":
				e.id = v
			case "event":
				e.event = v
			case "data":
				e.data = v
			}
		}
	}
}

func (s *sse) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := s.next(t).String(); got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
}

func TestRoutes_Watch(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, _ := oneNodeWith(t, kv.Config{HistoryCount: 4}, Config{WatchHeartbeat: 5 * time.Second})
		l := serveHTTP(t, s)
		serve(s, "PUT", "/v1/kv/w/a", "1") // 1: the leader's entry, 2: the own session, 3: w/a
		w := watch(t, l, "/v1/watch?prefix=w/&from_revision=1", http.StatusOK)
		k := watch(t, l, "/v1/watch?key=w/b", http.StatusOK) // from now on
		serve(s, "PUT", "/v1/kv/other", "x")                 // 4
		serve(s, "PUT", "/v1/kv/w/%FF", "")                  // 5
		serve(s, "POST", "/v1/txn", `{"success":[{"op":"put","key":"w/b","value":"Mg=="},{"op":"delete","key":"w/a"},{"op":"put","key":"zz","value":""}]}`)
		w.expect(t,
			`3 put {"key":"w/a","revision":3,"value":"MQ=="}`,
			`5 put {"key_base64":"dy//","revision":5,"value":""}`,
			`6 batch {"revision":6,"changes":[{"key":"w/b","type":"put","value":"Mg=="},{"key":"w/a","type":"delete"}]}`)
		k.expect(t, `6 put {"key":"w/b","revision":6,"value":"Mg=="}`)
		// Quiet: heartbeats (virtual time).
		w.expect(t, ":heartbeat")

		// Last-Event-ID wins over from_revision.
		r := watch(t, l, "/v1/watch?prefix=w/&from_revision=1", http.StatusOK, "Last-Event-ID", "5")
		r.expect(t, `6 batch {"revision":6,"changes":[{"key":"w/b","type":"put","value":"Mg=="},{"key":"w/a","type":"delete"}]}`)

		// The history keeps 4 revisions: older starts are gone.
		for i := range 4 {
			serve(s, "PUT", "/v1/kv/x", fmt.Sprint(i))
		}
		watch(t, l, "/v1/watch?prefix=w/&from_revision=2", http.StatusGone)
		watch(t, l, "/v1/watch?prefix=w/", http.StatusBadRequest, "Last-Event-ID", "x")

		// A watcher that does not read falls behind the history: when it
		// reads again it gets what was kept for it, then a final event.
		// The first put reaches the stream before the others (Wait: the
		// stream goroutine takes it and blocks writing it); without the
		// Wait, all ten may land before the stream ever runs, and it has
		// nothing but the final event to give (the race detector's
		// scheduling did that once in CI).
		slow := watch(t, l, "/v1/watch?prefix=s/", http.StatusOK)
		serve(s, "PUT", "/v1/kv/s/k", "0")
		synctest.Wait()
		for i := 1; i < 10; i++ {
			serve(s, "PUT", "/v1/kv/s/k", fmt.Sprint(i))
		}
		synctest.Wait()
		var got []string
		for e := slow.next(t); e.event != ""; e = slow.next(t) {
			got = append(got, e.event)
		}
		if len(got) < 2 || got[0] != "put" || got[len(got)-1] != "compacted" || slices.ContainsFunc(got[:len(got)-1], func(e string) bool { return e != "put" }) {
			t.Fatalf("slow watcher got %v, want some puts then compacted", got)
		}
	})
}

// TestRoutes_WatchersBounded: beyond kv.Config.MaxWatchers a watch is
// refused with 429, and a closed stream frees its place.
func TestRoutes_WatchersBounded(t *testing.T) {
	bubble(t, func(t *testing.T) {
		s, _ := oneNodeWith(t, kv.Config{MaxWatchers: 1}, Config{})
		l := serveHTTP(t, s)
		first := watch(t, l, "/v1/watch?prefix=a", http.StatusOK)
		watch(t, l, "/v1/watch?prefix=b", http.StatusTooManyRequests)
		first.c.Close()
		synctest.Wait()
		watch(t, l, "/v1/watch?prefix=b", http.StatusOK)
	})
}
