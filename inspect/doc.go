// Package inspect turns a node's typed events (raft.Event) into things people
// and machines read: coloured console lines (Console), Prometheus metrics
// (Metrics), a stable JSON form (JSONEvent) and a Server-Sent Events stream
// (SSEHandler).
//
// Events fall into four categories (state, rpc, commit, snapshot) that every
// output filters the same way; heartbeats and their replies are hidden unless
// asked for. The package imports only raft, the standard library and the
// Prometheus client, so any runtime can feed it.
package inspect
