package raft

// Forwarded proposals (§8: a client may contact any server; one that is
// not the leader hands the request on). A follower sends its proposals to
// the leader in one MsgProp; the leader appends them as consecutive
// entries and answers where: MsgPropResp with the first index and the
// term. The follower's runtime then waits for its own state machine to
// apply that index: if the entry applied there has that term, it is the
// proposal, and its result is the one every node computes; if not,
// another leader's entry took its place and the proposal is certainly not
// applied. Only a lost request or answer leaves the outcome unknown.

// ProposalResult answers proposals made with ForwardProposal, in a Ready.
type ProposalResult struct {
	RequestCtx []byte
	// Index is the log index of the first proposal and Term the term of
	// them all; the rest follow at Index+1, Index+2, ... Zero when Err is
	// set.
	Index, Term uint64
	// Err is nil, a *NotLeaderError or ErrProposalDropped: the proposals
	// were certainly not appended, and may be proposed again.
	Err error
}

// ForwardProposal proposes data as consecutive entries: on the leader at
// once, on a follower through the leader (MsgProp). The answer arrives as
// a ProposalResult carrying ctx in a later Ready; it may be lost with the
// message (the caller times out, and the outcome is unknown). It returns
// ErrNoLeader when no leader is known to ask.
func (r *Raft) ForwardProposal(ctx []byte, data ...[]byte) error {
	if r.role == Leader {
		index, term, err := r.proposeBatch(data)
		r.proposalResults = append(r.proposalResults, ProposalResult{RequestCtx: ctx, Index: index, Term: term, Err: err})
		return nil
	}
	if r.lead == None {
		return ErrNoLeader
	}
	ents := make([]Entry, len(data))
	for i, d := range data {
		ents[i] = Entry{Type: EntryNormal, Data: d}
	}
	r.send(Message{Type: MsgProp, To: r.lead, Entries: ents, Context: ctx})
	return nil
}

// proposeBatch appends every proposal of data, or none: the leader must be
// able to take them all (MaxUncommittedBytes, no transfer in progress).
func (r *Raft) proposeBatch(data [][]byte) (index, term uint64, err error) {
	if r.role != Leader {
		return 0, 0, &NotLeaderError{Leader: r.lead}
	}
	if len(data) == 0 {
		return 0, 0, nil
	}
	if r.leadTransferee != None {
		return 0, 0, ErrTransferring
	}
	var size uint64
	for _, d := range data {
		size += uint64(len(d)) + entryOverhead
	}
	if r.cfg.MaxUncommittedBytes > 0 && r.uncommitted > 0 && r.uncommitted+size > r.cfg.MaxUncommittedBytes {
		return 0, 0, ErrProposalDropped
	}
	first := r.log.lastIndex() + 1
	ents := make([]Entry, len(data))
	for i, d := range data {
		ents[i] = Entry{Term: r.term, Index: first + uint64(i), Type: EntryNormal, Data: d}
	}
	r.appendEntry(ents...)
	return first, r.term, nil
}

// rememberedProps is how many of each sender's latest forwarded batches
// the leader remembers.
const rememberedProps = 256

// forwardedProps remembers where this node, leading, appended the latest
// MsgProps of each sender, by request context (unique per batch and
// sender start). A duplicated MsgProp (the network may deliver a message
// twice) is then answered where its first copy went instead of appended
// again: a command appended twice could apply twice if its client's
// session expired between the copies (thesis §6.3). Kept across terms:
// an old answer stays true (handlePropResp).
type forwardedProps map[uint64]*sentProps

// sentProps is one sender's: where each remembered context went, and the
// contexts in the order they came, the oldest forgotten first.
type sentProps struct {
	where map[string]forwardedProp
	order [rememberedProps]string
	next  int
}

type forwardedProp struct{ index, term uint64 }

func (f forwardedProps) find(from uint64, ctx []byte) (forwardedProp, bool) {
	if s := f[from]; s != nil {
		p, ok := s.where[string(ctx)]
		return p, ok
	}
	return forwardedProp{}, false
}

func (f *forwardedProps) add(from uint64, ctx []byte, p forwardedProp) {
	if *f == nil {
		*f = forwardedProps{}
	}
	s := (*f)[from]
	if s == nil {
		s = &sentProps{where: map[string]forwardedProp{}}
		(*f)[from] = s
	}
	delete(s.where, s.order[s.next])
	s.order[s.next] = string(ctx)
	s.where[string(ctx)] = p
	s.next = (s.next + 1) % rememberedProps
}

// handleProp is the leader's side of MsgProp.
func (r *Raft) handleProp(m Message) {
	if p, ok := r.forwarded.find(m.From, m.Context); ok && len(m.Context) > 0 {
		r.send(Message{Type: MsgPropResp, To: m.From, Context: m.Context, Index: p.index, LogTerm: p.term})
		return
	}
	data := make([][]byte, len(m.Entries))
	for i, e := range m.Entries {
		data[i] = e.Data
	}
	index, term, err := r.proposeBatch(data)
	if err == nil && index != 0 && len(m.Context) > 0 {
		r.forwarded.add(m.From, m.Context, forwardedProp{index: index, term: term})
	}
	resp := Message{Type: MsgPropResp, To: m.From, Context: m.Context, Index: index, LogTerm: term}
	switch {
	case err == ErrProposalDropped:
		resp.Reject, resp.RejectHint = true, propRejectDropped
	case err != nil:
		resp.Reject, resp.RejectHint = true, propRejectNotLeader
	}
	r.send(resp)
}

// rejectProp answers a MsgProp this node cannot take: it does not lead.
func (r *Raft) rejectProp(m Message) {
	r.send(Message{Type: MsgPropResp, To: m.From, Context: m.Context, Reject: true, RejectHint: propRejectNotLeader})
}

// handlePropResp turns the leader's answer into a ProposalResult. An
// answer from an earlier term is still true (the entries were appended
// there), so it is taken whatever our term.
func (r *Raft) handlePropResp(m Message) {
	res := ProposalResult{RequestCtx: m.Context, Index: m.Index, Term: m.LogTerm}
	if m.Reject {
		res.Index, res.Term = 0, 0
		res.Err = &NotLeaderError{Leader: r.lead}
		if m.RejectHint == propRejectDropped {
			res.Err = ErrProposalDropped
		}
	}
	r.proposalResults = append(r.proposalResults, res)
}
