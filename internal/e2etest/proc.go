package e2etest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logLines is how much of a process's log the test log shows when the
// test failed.
const logLines = 40

// ProcSpec is a raftex process to start.
type ProcSpec struct {
	Name string   // in messages: "n1#2" (its second start), "cluster"
	Args []string // raftex's arguments
	// Env is added to the environment: ours less any RAFTEX_* variable.
	Env []string
	Dir string // working directory; "": ours
	Log string // file the process's stdout and stderr are appended to
	// Arg0 is the name the process sees itself run as (os.Args[0]), as a
	// user's shell would pass it ("./raftex"); "": the binary's path.
	Arg0 string
}

// Proc is one raftex process started by a test.
type Proc struct {
	Name    string
	Args    []string
	LogPath string
	Cmd     *exec.Cmd
	exited  chan struct{} // closed once Cmd.Wait returned
}

// StartProc runs the binary Main built as s says, in a process group of
// its own that dies with the test process. When the test ends it kills
// the whole group (the process and any child it started); if the test
// failed, it shows the tail of the log and copies the log to
// ArtifactDir(t) as <test>-<log's name>.
func StartProc(t testing.TB, s ProcSpec) *Proc {
	t.Helper()
	if bin == "" {
		t.Fatal("e2etest: no raftex binary: TestMain must run e2etest.Main")
	}
	logf, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child holds its own copy
	cmd := exec.Command(bin, s.Args...)
	if s.Arg0 != "" {
		cmd.Args[0] = s.Arg0
	}
	cmd.Env = Env(s.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = s.Dir
	// Pdeathsig: should the test process die without cleaning up, its
	// children die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", s.Name, err)
	}
	p := &Proc{Name: s.Name, Args: s.Args, LogPath: s.Log, Cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			p.keepLog(t)
		}
	})
	return p
}

// keepLog shows the tail of the log in the test log and keeps the whole
// of it as an artifact.
func (p *Proc) keepLog(t testing.TB) {
	t.Logf("last lines of %s's log (%s):\n%s", p.Name, strings.Join(p.Args, " "), p.Tail(logLines))
	if dir := ArtifactDir(t); dir != "" {
		name := strings.ReplaceAll(t.Name(), "/", "_") + "-" + filepath.Base(p.LogPath)
		os.WriteFile(filepath.Join(dir, name), []byte(p.Log()), 0o644)
	}
}

// Env is our environment less any RAFTEX_* variable (meant for the tests,
// or the developer's shell: it would set a flag of the process), plus
// extra.
func Env(extra ...string) []string {
	env := slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "RAFTEX_") })
	return append(env, extra...)
}

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process (not to its group).
func (p *Proc) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signalling %s with %v: %v", p.Name, sig, err)
	}
}

// Freeze stops the process (SIGSTOP) and returns once every thread of it
// is stopped: the signal alone is asynchronous, and a thread still
// running for a few milliseconds after it can answer a message the test
// means it never to see.
func (p *Proc) Freeze(t testing.TB) {
	t.Helper()
	p.Signal(t, syscall.SIGSTOP)
	pid := p.Cmd.Process.Pid
	Poll{Within: 10 * time.Second, Every: time.Millisecond}.Until(t, p.Name+" stopped", func() error {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return err
		}
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if err != nil {
				return err
			}
			// The state follows the command name in parentheses.
			if i := bytes.LastIndexByte(b, ')'); i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				return fmt.Errorf("thread %s not stopped yet", task.Name())
			}
		}
		return nil
	})
}

// Wait waits for the process to exit and returns its exit code (-1 when a
// signal killed it); it fails the test if it runs for longer than
// timeout.
func (p *Proc) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.Cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s still running after %s", p.Name, timeout)
		return 0
	}
}

// Log returns everything the process wrote so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Tail returns the last n lines of the log.
func (p *Proc) Tail(n int) string { return LastLines(p.Log(), n) }
