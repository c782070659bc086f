package raftex_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/raftex/raftex"
)

// logBuffer collects a logger's lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// single returns the config of a one-node cluster at peer address peer.
func single(dir, peer string, logs *logBuffer) raftex.Config {
	return raftex.Config{ID: 1, DataDir: dir, PeerAddr: peer, InitialCluster: map[uint64]string{1: peer},
		Logger: slog.New(slog.NewTextHandler(logs, nil))}
}

func storedMembers(t *testing.T, dir string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Members map[string]string }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Members
}

// Two nodes on one data dir would write one log: the second is refused,
// naming the process that holds the dir; after the first stops, a node
// starts there again.
func TestDataDirIsLocked(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir, logs := t.TempDir(), &logBuffer{}
	cfg := single(dir, loopbackAddr(t), logs)
	n, err := raftex.StartNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	second := cfg
	second.PeerAddr = loopbackAddr(t)
	_, err = raftex.StartNode(second)
	if !errors.Is(err, raftex.ErrDataDirInUse) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("a second node on the data dir: %v; want ErrDataDirInUse naming pid %d", err, os.Getpid())
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	again, err := raftex.StartNode(cfg)
	if err != nil {
		t.Fatalf("restart after the first stopped: %v", err)
	}
	again.Stop()
}

// A first start that fails (the peer port is taken) leaves no cluster
// file, so the next start takes the corrected initial cluster; and so for
// a taken client port.
func TestFailedFirstStartLeavesNoClusterFile(t *testing.T) {
	defer goleak.VerifyNone(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir, logs := t.TempDir(), &logBuffer{}
	if _, err := raftex.StartNode(single(dir, taken.Addr().String(), logs)); err == nil {
		t.Fatal("started on a peer port in use")
	}
	bad := single(dir, loopbackAddr(t), logs)
	bad.ClientAddr = taken.Addr().String()
	if _, err := raftex.StartNode(bad); err == nil {
		t.Fatal("started on a client port in use")
	}
	if _, err := os.Stat(filepath.Join(dir, "cluster.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the failed starts left a cluster file: %v", err)
	}
	good := loopbackAddr(t)
	n, err := raftex.StartNode(single(dir, good, logs))
	if err != nil {
		t.Fatalf("start with the corrected cluster: %v", err)
	}
	defer n.Stop()
	if m := storedMembers(t, dir); m["1"] != good || len(m) != 1 {
		t.Fatalf("cluster file holds %v, want n1=%s", m, good)
	}
}

// Once the log is bootstrapped, the data dir's cluster wins over another
// initial cluster, and the log says so, naming both.
func TestInitialClusterThatDiffersIsLogged(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir, logs := t.TempDir(), &logBuffer{}
	first := loopbackAddr(t)
	n, err := raftex.StartNode(single(dir, first, logs))
	if err != nil {
		t.Fatal(err)
	}
	n.Stop()
	other := single(dir, first, logs)
	other.InitialCluster = map[uint64]string{1: first, 2: "127.0.0.1:1"}
	n, err = raftex.StartNode(other)
	if err != nil {
		t.Fatal(err)
	}
	n.Stop()
	var warn string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "initial cluster") {
			warn = line
		}
	}
	if !strings.Contains(warn, `stored="n1=`+first+`"`) || !strings.Contains(warn, "given=\"n1="+first+",n2=127.0.0.1:1\"") {
		t.Fatalf("no WARN naming both clusters; the log:\n%s", logs.String())
	}
	if m := storedMembers(t, dir); len(m) != 1 {
		t.Fatalf("cluster file now holds %v, want the stored one kept", m)
	}
}

// A cluster file beside a log that was never bootstrapped (left by an
// older version's failed first start) gives way to the initial cluster
// given, with a WARN.
func TestClusterFileOfAStartThatNeverBootstrapped(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir, logs := t.TempDir(), &logBuffer{}
	stale := `{"cluster_id": "x", "members": {"1": "127.0.0.1:1"}}`
	if err := os.WriteFile(filepath.Join(dir, "cluster.json"), []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	good := loopbackAddr(t)
	n, err := raftex.StartNode(single(dir, good, logs))
	if err != nil {
		t.Fatal(err)
	}
	n.Stop()
	if m := storedMembers(t, dir); m["1"] != good {
		t.Fatalf("cluster file holds %v, want n1=%s", m, good)
	}
	if !strings.Contains(logs.String(), "never bootstrapped") {
		t.Fatalf("no WARN about the replaced cluster file:\n%s", logs.String())
	}
}

// What a node writes in its data dir is its own: files 0600, directories
// 0700.
func TestDataDirPermissions(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := filepath.Join(t.TempDir(), "new", "n1")
	n, err := raftex.StartNode(single(dir, loopbackAddr(t), &logBuffer{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Set(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	seen := 0
	err = filepath.WalkDir(filepath.Dir(dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm()&^want != 0 {
			t.Errorf("%s has mode %v, want at most %v", path, fi.Mode().Perm(), want)
		}
		seen++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 8 { // new, n1, raftex.lock, cluster.json, raft, raft/wal, a segment, raft/snap
		t.Fatalf("only %d entries in the data dir", seen)
	}
}
