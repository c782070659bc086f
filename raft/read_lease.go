package raft

// ReadLease is ReadIndex served from the leader's lease when
// Config.LeaseRead is on (thesis §6.4.1).
func (r *Raft) ReadLease(ctx []byte) error { return r.ReadIndex(ctx) }
