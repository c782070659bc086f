package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeMembers serves the membership routes over an in-memory member list,
// refusing what the cluster refuses (an id taken 409, an unknown id 404,
// removing the last voter 400), and records the bodies it was sent.
func fakeMembers(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	type member struct {
		ID         string `json:"id"`
		PeerAddr   string `json:"peer_addr"`
		ClientAddr string `json:"client_addr"`
		Voter      bool   `json:"voter"`
	}
	members := []*member{
		{"n1", "10.0.0.1:7000", "10.0.0.1:8000", true},
		{"n2", "10.0.0.2:7000", "10.0.0.2:8000", true},
	}
	leader := "n1"
	var sent []string
	answer := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	list := func(w http.ResponseWriter) {
		answer(w, 200, map[string]any{"members": members, "leader": leader})
	}
	find := func(id string) int {
		for i, m := range members {
			if m.ID == id {
				return i
			}
		}
		return -1
	}
	unknown := func(w http.ResponseWriter, id string) {
		answer(w, 404, map[string]string{"error": "no member " + id, "code": "unknown_member"})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, r *http.Request) { list(w) })
	mux.HandleFunc("POST /v1/members", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sent = append(sent, string(b))
		var body struct {
			ID       string `json:"id"`
			PeerAddr string `json:"peer_addr"`
			Learner  bool   `json:"learner"`
		}
		json.Unmarshal(b, &body)
		if find(body.ID) >= 0 {
			answer(w, 409, map[string]string{"error": body.ID + " is a member already", "code": "member_exists"})
			return
		}
		members = append(members, &member{ID: body.ID, PeerAddr: body.PeerAddr})
		list(w)
	})
	mux.HandleFunc("POST /v1/members/{id}/promote", func(w http.ResponseWriter, r *http.Request) {
		i := find(r.PathValue("id"))
		if i < 0 {
			unknown(w, r.PathValue("id"))
			return
		}
		members[i].Voter = true
		list(w)
	})
	mux.HandleFunc("DELETE /v1/members/{id}", func(w http.ResponseWriter, r *http.Request) {
		i := find(r.PathValue("id"))
		switch {
		case i < 0:
			unknown(w, r.PathValue("id"))
		case len(members) == 1:
			answer(w, 400, map[string]string{"error": "raft: invalid configuration change: no voter would remain", "code": "invalid_change"})
		default:
			members = append(members[:i], members[i+1:]...)
			list(w)
		}
	})
	mux.HandleFunc("POST /v1/leader/transfer", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sent = append(sent, string(b))
		var body struct{ To string }
		json.Unmarshal(b, &body)
		if body.To == "n9" {
			answer(w, 409, map[string]string{"error": "the leadership transfer to n9 aborted", "code": "transfer_aborted"})
			return
		}
		leader = "n2"
		answer(w, 200, map[string]any{"leader": leader, "term": 5})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &sent
}

// TestMemberGolden: member list, add (as a learner and not), promote,
// remove and leader transfer print the members or the new leader; each
// refusal exits with its code (3 unknown member, 7 conflict, 2 invalid).
func TestMemberGolden(t *testing.T) {
	srv, sent := fakeMembers(t)
	t.Setenv("RAFTEX_ENDPOINTS", srv.Listener.Addr().String())
	got := transcript(t,
		[]string{"member", "list"},
		[]string{"member", "add", "n3", "10.0.0.3:7000", "--learner"},
		[]string{"member", "add", "n3", "10.0.0.3:7000"},
		[]string{"member", "promote", "n3"},
		[]string{"member", "promote", "n9"},
		[]string{"member", "remove", "n2", "-o", "json"},
		[]string{"member", "remove", "bogus"},
		[]string{"member", "add", "n4"},
		[]string{"leader", "transfer", "n9"},
		[]string{"leader", "transfer"},
		[]string{"leader", "transfer", "-o", "json"},
		[]string{"member", "remove", "n1"},
		[]string{"member", "remove", "n3"},
		[]string{"member", "remove", "n1"},
	)
	golden(t, "member", got)
	want := []string{`{"id":"n3","learner":true,"peer_addr":"10.0.0.3:7000"}`, `{"id":"n3","peer_addr":"10.0.0.3:7000"}`,
		`{"to":"n9"}`, `{}`, `{}`}
	if strings.Join(*sent, "\n") != strings.Join(want, "\n") {
		t.Errorf("bodies sent:\n%s\nwant:\n%s", strings.Join(*sent, "\n"), strings.Join(want, "\n"))
	}
}
