// Package e2etest is the harness of the end-to-end tests (e2e,
// e2e/observe, e2e/docker): what they need to run the real raftex binary
// and to read it over HTTP, in one place.
//
//   - Main is the body of a TestMain: it builds the binary once per test
//     binary, runs the tests, and fails the run if a raftex process it
//     started is left running (or, if asked, a goroutine leaked). Build builds
//     it elsewhere.
//   - Ports hands out free loopback ports from a range of the package's own.
//   - Proc is one raftex process: started in a process group of its own,
//     its output appended to a log file whose tail the test log shows (and
//     $RAFTEX_ARTIFACTS keeps) when the test fails; killed when it ends.
//   - Cluster is n `raftex serve` processes on loopback, with leader
//     discovery, kill, stop and restart; Node is one member as the test
//     reaches it over HTTP (its status, a write), whoever runs it.
//   - Poll waits for a condition with a deadline; ArtifactDir is where CI
//     keeps files for people to look at.
//
// It is a library for tests only (STYLE.md habit 9: shared test helpers
// live under internal/), and it never sleeps but to poll.
package e2etest
