package main

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"
)

// The sampling serve --enable-pprof turns on for the block and mutex
// profiles (both off in Go by default): on average one blocking event per
// 10 µs spent blocked (every longer one), and one mutex contention in 10.
// It costs some throughput: measure with pprof off, profile with it on.
const (
	pprofBlockRate     = 10 * time.Microsecond
	pprofMutexFraction = 10
)

// pprofHandler serves net/http/pprof's handlers under /debug/pprof/
// (raftex.Config.Debug) and turns on the block and mutex profiles. The
// binary serves nothing from http.DefaultServeMux, where importing
// net/http/pprof also registers them.
func pprofHandler() http.Handler {
	runtime.SetBlockProfileRate(int(pprofBlockRate.Nanoseconds()))
	runtime.SetMutexProfileFraction(pprofMutexFraction)
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
