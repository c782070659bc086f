package vfs

import (
	"errors"
	"fmt"
	"sync"
)

// ErrInjected is the error an Injector makes an operation fail with.
var ErrInjected = errors.New("vfs: injected error")

// OpKind is a set of kinds of file-system operation.
type OpKind uint16

// The kinds of operation an Injector sees.
const (
	OpCreate OpKind = 1 << iota
	OpOpen
	OpRemove
	OpRename
	OpMkdir
	OpList
	OpSyncDir
	OpWrite
	OpRead
	OpSync
	OpTruncate
	OpSize
	OpClose

	// OpMutate is every kind that changes the disk.
	OpMutate = OpCreate | OpRemove | OpRename | OpMkdir | OpSyncDir | OpWrite | OpSync | OpTruncate
	// OpAny is every kind.
	OpAny = OpClose<<1 - 1
)

var opNames = [...]string{"create", "open", "remove", "rename", "mkdir", "list", "syncdir", "write", "read", "sync", "truncate", "size", "close"}

func (k OpKind) String() string {
	for i, name := range opNames {
		if k == 1<<i {
			return name
		}
	}
	return fmt.Sprintf("opkind(%#x)", uint16(k))
}

// Op is an operation about to be performed.
type Op struct {
	Kind OpKind
	// Path is the file or directory operated on (for a rename, the old
	// name).
	Path string
}

// Injector decides, before each operation, whether it fails: a non-nil
// error is returned in place of performing it. Called concurrently if the
// FS is used concurrently.
type Injector interface {
	MaybeError(op Op) error
}

// InjectorFunc adapts a function to Injector.
type InjectorFunc func(op Op) error

// MaybeError implements Injector.
func (f InjectorFunc) MaybeError(op Op) error { return f(op) }

// FailNth fails the nth operation (counting from 1) whose kind is in kinds
// and no other.
func FailNth(n int, kinds OpKind) Injector { return failCount(n, kinds, false) }

// FailFrom fails the nth operation (counting from 1) whose kind is in kinds
// and every later one of those kinds: the process died at that point, or
// the disk did. Combined with MemFS.CrashClone it simulates a crash before
// any chosen operation.
func FailFrom(n int, kinds OpKind) Injector { return failCount(n, kinds, true) }

func failCount(n int, kinds OpKind, sticky bool) Injector {
	var mu sync.Mutex
	seen := 0
	return InjectorFunc(func(op Op) error {
		if op.Kind&kinds == 0 {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		seen++
		if seen == n || (sticky && seen > n) {
			return fmt.Errorf("%w: %s %s (op %d)", ErrInjected, op.Kind, op.Path, seen)
		}
		return nil
	})
}

// FailIf fails every operation for which pred returns true.
func FailIf(pred func(Op) bool) Injector {
	return InjectorFunc(func(op Op) error {
		if pred(op) {
			return fmt.Errorf("%w: %s %s", ErrInjected, op.Kind, op.Path)
		}
		return nil
	})
}

// WithInjector returns fs with inj consulted before every operation.
func WithInjector(fs FS, inj Injector) FS { return &injectFS{fs: fs, inj: inj} }

type injectFS struct {
	fs  FS
	inj Injector
}

func (f *injectFS) file(kind OpKind, name string, open func(string) (File, error)) (File, error) {
	if err := f.inj.MaybeError(Op{Kind: kind, Path: name}); err != nil {
		return nil, err
	}
	file, err := open(name)
	if err != nil {
		return nil, err
	}
	return &injectFile{File: file, inj: f.inj, name: name}, nil
}

func (f *injectFS) do(kind OpKind, name string, fn func() error) error {
	if err := f.inj.MaybeError(Op{Kind: kind, Path: name}); err != nil {
		return err
	}
	return fn()
}

func (f *injectFS) Create(name string) (File, error) { return f.file(OpCreate, name, f.fs.Create) }
func (f *injectFS) Open(name string) (File, error)   { return f.file(OpOpen, name, f.fs.Open) }
func (f *injectFS) OpenAppend(name string) (File, error) {
	return f.file(OpOpen, name, f.fs.OpenAppend)
}
func (f *injectFS) Remove(name string) error {
	return f.do(OpRemove, name, func() error { return f.fs.Remove(name) })
}
func (f *injectFS) Rename(oldname, newname string) error {
	return f.do(OpRename, oldname, func() error { return f.fs.Rename(oldname, newname) })
}
func (f *injectFS) MkdirAll(dir string) error {
	return f.do(OpMkdir, dir, func() error { return f.fs.MkdirAll(dir) })
}
func (f *injectFS) SyncDir(dir string) error {
	return f.do(OpSyncDir, dir, func() error { return f.fs.SyncDir(dir) })
}
func (f *injectFS) List(dir string) ([]string, error) {
	if err := f.inj.MaybeError(Op{Kind: OpList, Path: dir}); err != nil {
		return nil, err
	}
	return f.fs.List(dir)
}

type injectFile struct {
	File
	inj  Injector
	name string
}

func (f *injectFile) check(kind OpKind) error {
	return f.inj.MaybeError(Op{Kind: kind, Path: f.name})
}

func (f *injectFile) Write(p []byte) (int, error) {
	if err := f.check(OpWrite); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *injectFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check(OpRead); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *injectFile) Sync() error {
	if err := f.check(OpSync); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *injectFile) Truncate(size int64) error {
	if err := f.check(OpTruncate); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *injectFile) Size() (int64, error) {
	if err := f.check(OpSize); err != nil {
		return 0, err
	}
	return f.File.Size()
}

// Close always closes the underlying file, so a failed close leaks nothing.
func (f *injectFile) Close() error {
	err := f.check(OpClose)
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	return err
}
