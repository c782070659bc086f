// Command raftex is the one binary of raftex: a cluster node (serve), a
// local cluster (cluster), the narrated demo (demo), a key-value CLI (put,
// get, del, ls, watch, txn, status), operator tools (health, wal dump, version), a load
// generator (bench) and the simulator's long campaigns (sim). cli.go holds
// the conventions every command follows.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
