package raft

// ReadLease is ReadIndex answered from the leader's lease (thesis §6.4.1):
// with Config.LeaseRead on, a leader whose lease holds releases the read at
// once, without a heartbeat round. Otherwise (LeaseRead off, the lease
// expired or revoked, or asked on a follower) it takes a round like
// ReadIndex.
func (r *Raft) ReadLease(ctx []byte) error { return r.requestRead(readRequest{ctx: ctx, lease: true}) }
