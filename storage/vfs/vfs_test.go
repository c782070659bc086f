package vfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func mustWrite(t *testing.T, f File, s string) {
	t.Helper()
	if _, err := f.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, fsys FS, name string) string {
	t.Helper()
	f, err := fsys.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return string(buf)
}

// testFS checks the FS contract shared by both implementations.
func testFS(t *testing.T, fsys FS, dir string) {
	if err := fsys.MkdirAll(dir + "/sub"); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Create(dir + "/a")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "hello ")
	mustWrite(t, f, "world")
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "!")
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, fsys, dir+"/a"); got != "hello!" {
		t.Fatalf("content = %q, want %q", got, "hello!")
	}
	f, err = fsys.OpenAppend(dir + "/a")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "?")
	f.Close()
	if got := readAll(t, fsys, dir+"/a"); got != "hello!?" {
		t.Fatalf("after append: %q", got)
	}
	r, err := fsys.Open(dir + "/a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("x")); err == nil {
		t.Fatal("write to a read-only file succeeded")
	}
	r.Close()
	if err := fsys.Rename(dir+"/a", dir+"/b"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	names, err := fsys.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"b"}) {
		t.Fatalf("List = %v, want [b] (files only)", names)
	}
	if _, err := fsys.Open(dir + "/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open(renamed away) = %v, want ErrNotExist", err)
	}
	if err := fsys.Remove(dir + "/b"); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Remove(dir + "/b"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second Remove = %v, want ErrNotExist", err)
	}
}

func TestOS(t *testing.T) { testFS(t, OS(), t.TempDir()) }

// A new directory is a name in its parent: a crash before the parent is
// synced may drop it, with everything synced inside it; MkdirAllSync
// makes it durable at once.
func TestCrashCloneDropsAnUnsyncedDirectory(t *testing.T) {
	m := NewMem()
	m.MkdirAll("/a/b")
	f, _ := m.Create("/a/b/f")
	mustWrite(t, f, "synced")
	f.Sync()
	m.SyncDir("/a/b")
	dropped := false
	for seed := range uint64(50) {
		c := m.CrashClone(rand.New(rand.NewPCG(seed, 3)))
		if _, err := c.List("/a/b"); errors.Is(err, fs.ErrNotExist) {
			dropped = true
			if _, err := c.Open("/a/b/f"); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("seed %d: /a/b is gone but its file is not: %v", seed, err)
			}
		}
	}
	if !dropped {
		t.Fatal("no crash dropped directories whose parents were never synced")
	}

	d := NewMem()
	if err := MkdirAllSync(d, "/a/b"); err != nil {
		t.Fatal(err)
	}
	for seed := range uint64(50) {
		c := d.CrashClone(rand.New(rand.NewPCG(seed, 3)))
		if _, err := c.List("/a/b"); err != nil {
			t.Fatalf("seed %d: a crash right after MkdirAllSync lost /a/b: %v", seed, err)
		}
	}
	if names, _ := d.List("/a"); len(names) != 0 {
		t.Fatalf("List shows subdirectories as files: %v", names)
	}
	if _, err := d.Create("/a/b"); err == nil {
		t.Fatal("Create over a directory's name succeeded")
	}
}

// On a real disk, files are 0600 and directories 0700: the log and the
// snapshots are nobody else's to read.
func TestOSPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x", "y")
	if err := MkdirAllSync(OS(), dir); err != nil {
		t.Fatal(err)
	}
	f, err := OS().Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	for path, want := range map[string]os.FileMode{filepath.Dir(dir): 0o700, dir: 0o700, filepath.Join(dir, "f"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&^want != 0 {
			t.Errorf("%s has mode %v, want at most %v", path, fi.Mode().Perm(), want)
		}
	}
}
func TestMem(t *testing.T) { testFS(t, NewMem(), "/data") }

func TestCrashCloneKeepsSyncedDropsOrKeepsUnsynced(t *testing.T) {
	m := NewMem()
	MkdirAllSync(m, "/d")
	f, _ := m.Create("/d/log")
	mustWrite(t, f, "durable.")
	f.Sync()
	m.SyncDir("/d")
	mustWrite(t, f, "maybe-1.")
	mustWrite(t, f, "maybe-2.")
	seen := map[string]bool{}
	for seed := range uint64(200) {
		c := m.CrashClone(rand.New(rand.NewPCG(seed, 1)))
		got := readAll(t, c, "/d/log")
		if !bytes.HasPrefix([]byte(got), []byte("durable.")) {
			t.Fatalf("seed %d lost synced data: %q", seed, got)
		}
		// What follows is a prefix of the unsynced appends, possibly
		// followed by zeros where a torn write grew the size only.
		rest := bytes.TrimRight([]byte(got[len("durable."):]), "\x00")
		if !bytes.HasPrefix([]byte("maybe-1.maybe-2."), rest) {
			t.Fatalf("seed %d: unsynced tail %q is not a prefix of what was written", seed, got)
		}
		seen[got] = true
	}
	for _, want := range []string{"durable.", "durable.maybe-1.", "durable.maybe-1.maybe-2."} {
		if !seen[want] {
			t.Errorf("no crash produced %q", want)
		}
	}
	if len(seen) < 6 {
		t.Errorf("only %d distinct crash images; torn writes missing?", len(seen))
	}
}

func TestCrashCloneDirectoryEntries(t *testing.T) {
	m := NewMem()
	MkdirAllSync(m, "/d")
	f, _ := m.Create("/d/old")
	mustWrite(t, f, "old")
	f.Sync()
	m.SyncDir("/d")
	g, _ := m.Create("/d/tmp")
	mustWrite(t, g, "new")
	g.Sync()
	m.Rename("/d/tmp", "/d/old") // not yet durable
	seen := map[string]bool{}
	for seed := range uint64(100) {
		c := m.CrashClone(rand.New(rand.NewPCG(seed, 2)))
		names, _ := c.List("/d")
		got := readAll(t, c, "/d/old")
		seen[got+" "+string(bytes.Join(toBytes(names), []byte(",")))] = true
	}
	// The rename is atomic: old holds "old" or "new", never nothing.
	for k := range seen {
		switch k {
		case "old old", "old old,tmp", "new old":
		default:
			t.Errorf("impossible crash image %q", k)
		}
	}
	if !seen["new old"] || !seen["old old"] {
		t.Errorf("crash images %v miss the rename kept or dropped", seen)
	}
	m.SyncDir("/d")
	c := m.CrashClone(rand.New(rand.NewPCG(0, 0)))
	if got := readAll(t, c, "/d/old"); got != "new" {
		t.Fatalf("after SyncDir the rename was lost: %q", got)
	}
}

func toBytes(ss []string) [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, []byte(s))
	}
	return out
}

func TestCrashCloneDeterministic(t *testing.T) {
	build := func() *MemFS {
		m := NewMem()
		m.MkdirAll("/d")
		for i := range 5 {
			f, _ := m.Create("/d/" + string(rune('a'+i)))
			mustWrite(t, f, "0123456789")
			mustWrite(t, f, "abcdefghij")
		}
		return m
	}
	image := func(m *MemFS) string {
		var b bytes.Buffer
		names, _ := m.List("/d")
		for _, n := range names {
			b.WriteString(n + "=" + readAll(t, m, "/d/"+n) + ";")
		}
		return b.String()
	}
	for seed := range uint64(20) {
		a := image(build().CrashClone(rand.New(rand.NewPCG(seed, 3))))
		b := image(build().CrashClone(rand.New(rand.NewPCG(seed, 3))))
		if a != b {
			t.Fatalf("seed %d: clones differ:\n%s\n%s", seed, a, b)
		}
	}
}

func TestTruncateUndoneByCrash(t *testing.T) {
	m := NewMem()
	f, _ := m.Create("log")
	mustWrite(t, f, "abcdef")
	f.Sync()
	m.SyncDir(".")
	f.Truncate(2)
	seen := map[string]bool{}
	for seed := range uint64(50) {
		seen[readAll(t, m.CrashClone(rand.New(rand.NewPCG(seed, 4))), "log")] = true
	}
	if len(seen) != 2 || !seen["abcdef"] || !seen["ab"] {
		t.Fatalf("crash images %v, want {abcdef, ab}", seen)
	}
}

func TestInjector(t *testing.T) {
	m := NewMem()
	fsys := WithInjector(m, FailNth(2, OpWrite))
	f, err := fsys.Create("x")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, f, "1")
	if _, err := f.Write([]byte("2")); !errors.Is(err, ErrInjected) {
		t.Fatalf("second write = %v, want ErrInjected", err)
	}
	mustWrite(t, f, "3")
	if got := readAll(t, m, "x"); got != "13" {
		t.Fatalf("content %q, want 13", got)
	}

	fsys = WithInjector(m, FailFrom(1, OpSync|OpSyncDir))
	f, _ = fsys.Create("y")
	for range 3 {
		if err := f.Sync(); !errors.Is(err, ErrInjected) {
			t.Fatalf("Sync = %v, want ErrInjected every time", err)
		}
	}
	if err := fsys.SyncDir("."); !errors.Is(err, ErrInjected) {
		t.Fatalf("SyncDir = %v, want ErrInjected", err)
	}

	fsys = WithInjector(m, FailIf(func(op Op) bool { return op.Kind == OpRename && op.Path == "y" }))
	if err := fsys.Rename("y", "z"); !errors.Is(err, ErrInjected) {
		t.Fatalf("Rename = %v, want ErrInjected", err)
	}
	if err := fsys.Rename("x", "w"); err != nil {
		t.Fatalf("Rename of another file failed: %v", err)
	}
}

func TestOpKindString(t *testing.T) {
	if OpSyncDir.String() != "syncdir" || OpMutate.String() == "" {
		t.Fatal(OpSyncDir.String())
	}
}
