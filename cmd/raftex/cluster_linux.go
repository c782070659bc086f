package main

import "syscall"

// childProcAttr makes a node of `raftex cluster` get SIGTERM when the
// cluster process dies, however it dies (even by SIGKILL), so no node is
// left running.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
