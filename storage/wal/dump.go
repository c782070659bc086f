package wal

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/raftex/raftex/storage/vfs"
)

// Dump prints the log in dir for an operator: each segment, each record
// with its offset (entries with index, term, type and size), and any torn
// or corrupt record with the reason, then the state Open would recover or
// the error it would refuse with. It changes nothing on disk.
func Dump(fs vfs.FS, dir string, out io.Writer) error {
	names, err := fs.List(dir)
	if err != nil {
		return err
	}
	w := &WAL{fs: fs, dir: dir}
	var others []string
	for _, name := range names {
		if seq, first, ok := parseSegmentName(name); ok {
			w.segs = append(w.segs, segment{seq: seq, first: first, name: name, minWrite: first})
		} else {
			others = append(others, name)
		}
	}
	p := &printer{w: out}
	r := &replay{}
	for i := range w.segs {
		s := &w.segs[i]
		r.seg = s
		buf, err := readFile(w, s.name)
		if err != nil {
			return err
		}
		p.printf("segment %s (%d bytes)\n", s.name, len(buf))
		if i > 0 && s.seq != w.segs[i-1].seq+1 {
			p.printf("  CORRUPT: segment %d is missing\n", w.segs[i-1].seq+1)
		}
		last := i == len(w.segs)-1
		sc, rerr := scanSegment(buf, last,
			func(h header) error {
				p.printf("  @%-10d header     seq=%d first=%d base=%d/%d hs=%+v membership=%v\n",
					0, h.seq, h.first, h.base, h.baseTerm, h.hs, h.membership)
				return r.header(h, i == 0)
			},
			func(recs []Record) error {
				for _, rec := range recs {
					p.record(rec, "")
				}
				end := recs[len(recs)-1].End()
				p.printf("  @%-10d commit     batch@%d\n", end, recs[0].Offset)
				return r.batch(recs)
			})
		switch {
		case rerr != nil:
			p.printf("  CORRUPT at offset %d (after index %d): %v\n", rerr.Offset, r.lastIndex(), rerr.Err)
			p.corrupt = true
		case sc.isTorn(len(buf)):
			for _, rec := range sc.pending {
				p.record(rec, " (uncommitted)")
			}
			reason := sc.torn
			if reason == nil {
				reason = fmt.Errorf("last batch has no commit record")
			}
			p.printf("  TORN tail at offset %d: %v; Open cuts %d bytes from offset %d\n",
				sc.tornAt, reason, int64(len(buf))-sc.end, sc.end)
		}
	}
	for _, name := range others {
		p.printf("other file %s\n", filepath.Join(dir, name))
	}
	switch {
	case len(w.segs) == 0:
		p.printf("no segments\n")
	case p.corrupt:
		p.printf("Open would refuse: the log is corrupt\n")
	case r.missing() != nil:
		p.printf("Open would refuse: %v\n", r.missing())
	default:
		p.printf("log: first index %d, last index %d, term(%d)=%d, hard state %+v, membership %v\n",
			r.base+1, r.lastIndex(), r.base, r.baseTerm, r.hs, r.membership)
	}
	return p.err
}

type printer struct {
	w       io.Writer
	err     error
	corrupt bool
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *printer) record(rec Record, note string) {
	var desc string
	switch rec.Type {
	case TypeEntry:
		if e, err := decodeEntry(rec.Payload); err == nil {
			desc = fmt.Sprintf("index=%d term=%d type=%s len=%d", e.Index, e.Term, e.Type, len(e.Data))
		}
	case TypeHardState:
		if hs, err := decodeHardState(rec.Payload); err == nil {
			desc = fmt.Sprintf("term=%d vote=%d commit=%d", hs.Term, hs.Vote, hs.Commit)
		}
	case TypeCompact, TypeReset:
		if m, err := decodeMark(rec.Payload); err == nil {
			desc = fmt.Sprintf("index=%d term=%d", m.index, m.term)
		}
	case TypeMembership:
		if m, err := decodeMembership(rec.Payload); err == nil {
			desc = m.String()
		}
	}
	if desc == "" {
		desc = "malformed payload"
	}
	p.printf("  @%-10d %-10s %s%s\n", rec.Offset, rec.Type, desc, note)
}
