package kvapi

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestJSON: keys that are UTF-8 travel as "key", others as "key_base64",
// both ways; a compare has exactly one condition; an op result's kind is
// the fields it has.
func TestJSON(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{KeyValue{Key: []byte("a/1"), Value: []byte("v"), Revision: 3}, `{"key":"a/1","revision":3,"value":"dg=="}`},
		{KeyValue{Key: []byte("a/\xff"), Revision: 4}, `{"key_base64":"YS//","revision":4}`},
		{RevisionIs("k", 0), `{"key":"k","revision":0}`},
		{ValueIs("k", nil), `{"key":"k","value":""}`},
		{Exists("\xfe", false), `{"exists":false,"key_base64":"/g=="}`},
		{Put("k", nil), `{"key":"k","op":"put","value":""}`},
		{Delete("k"), `{"key":"k","op":"delete"}`},
		{OpResult{Kind: OpGet}, `{"found":false}`},
		{Change{Type: ChangeDelete, Key: []byte("k")}, `{"key":"k","type":"delete"}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil || string(b) != tc.want {
			t.Errorf("%+v = %s %v, want %s", tc.v, b, err, tc.want)
		}
	}
	var kv KeyValue
	if err := json.Unmarshal([]byte(`{"key_base64":"YS//","value":"dg==","revision":4}`), &kv); err != nil || string(kv.Key) != "a/\xff" || string(kv.Value) != "v" {
		t.Errorf("KeyValue from key_base64 = %+v %v", kv, err)
	}
	for _, bad := range []string{`{"key":"k"}`, `{"key":"k","revision":1,"exists":true}`, `{"revision":1}`,
		`{"key":"k","key_base64":"aw==","revision":1}`, `{"key":"k","revision":1,"extra":1}`} {
		var c Compare
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("compare %s accepted", bad)
		}
	}
	for _, bad := range []string{`{"op":"cas","key":"k"}`, `{"op":"get","key":"k","value":"dg=="}`} {
		var o Op
		if err := json.Unmarshal([]byte(bad), &o); err == nil {
			t.Errorf("op %s accepted", bad)
		}
	}
}

func TestErrors(t *testing.T) {
	if !errors.Is(&CASMismatchError{Revision: 3}, ErrCASMismatch) || !errors.Is(&CompactedError{CompactRevision: 9}, ErrCompacted) {
		t.Fatal("typed errors do not match their sentinels")
	}
	if o := ApplyRead(nil); o.Consistency != Linearizable {
		t.Fatalf("default consistency %q", o.Consistency)
	}
	if o := ApplyWrite([]WriteOption{WithCAS(0)}); !o.CAS || o.Revision != 0 {
		t.Fatalf("WithCAS(0) = %+v", o)
	}
}
