package tcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/raftex/raftex/raft"
	"github.com/raftex/raftex/transport"
)

// startSnapshot starts streaming MsgSnap m to p on a goroutine of its own,
// one at a time per peer. Called by Send with t.mu held.
func (t *Transport) startSnapshot(p *peer, m raft.Message) {
	if !t.started || m.Snapshot == nil || !p.snapping.CompareAndSwap(false, true) {
		// Not started (no Handler to report to), no meta, or one already
		// in flight (it will report).
		t.stats.Dropped(1)
		return
	}
	t.wg.Go(func() { t.runSnapshot(p, m) })
}

// runSnapshot is a snapshot sender goroutine: it owns one snapshot
// connection and the body being read. It returns when the receiver has
// answered, or on the first error; Stop and RemovePeer close its
// connection to end it early.
func (t *Transport) runSnapshot(p *peer, m raft.Message) {
	err := t.sendSnapshot(p, m)
	// Free the slot before reporting: the node may answer the report with
	// a new MsgSnap at once.
	p.snapping.Store(false)
	if err != nil && p.ctx.Err() == nil {
		t.logDialErr("transport/tcp: snapshot not sent", err, 1, "peer", p.id, "index", m.Snapshot.Meta.Index)
	}
	t.h.ReportSnapshot(p.id, err == nil)
}

// sendSnapshot streams the MsgSnap m and its body to p: the message, then
// the body from the SnapshotSource in chunks of at most chunkSize bytes,
// then its length, and waits for the receiver's result. Only one chunk is
// in memory at a time and TCP's flow control paces the stream to the
// receiver; the message stream to p is a separate connection, so
// heartbeats go on meanwhile.
func (t *Transport) sendSnapshot(p *peer, m raft.Message) error {
	if t.src == nil {
		return errors.New("transport/tcp: no SnapshotSource to read the snapshot from")
	}
	meta := m.Snapshot.Meta
	body, size, err := t.src.OpenSnapshot(meta)
	if err != nil {
		return fmt.Errorf("open snapshot %d/%d: %w", meta.Index, meta.Term, err)
	}
	defer body.Close()
	conn, err := t.connect(p, transport.StreamSnapshot)
	if err != nil {
		return err
	}
	defer t.untrack(conn)

	m.Snapshot = &raft.Snapshot{Meta: meta}
	frame := transport.AppendMessageFrame(nil, m)
	if err := t.write(conn, frame); err != nil {
		return err
	}
	t.stats.Sent(raft.MsgSnap, len(frame))
	total, err := t.sendChunks(conn, body)
	if err != nil {
		return err
	}
	if size >= 0 && total != size {
		return fmt.Errorf("snapshot %d/%d: the body has %d bytes, the source said %d", meta.Index, meta.Term, total, size)
	}
	end := transport.AppendFrame(nil, transport.KindSnapshotEnd, binary.AppendUvarint(nil, uint64(total)))
	if err := t.write(conn, end); err != nil {
		return err
	}
	t.stats.SentBytes(len(end))
	// No deadline: storing the body may take long; Stop, RemovePeer or
	// TCP keepalive end the wait.
	kind, payload, err := transport.NewFrameReader(conn, 1).Next(nil)
	switch {
	case err != nil:
		return fmt.Errorf("read the snapshot result: %w", err)
	case kind != transport.KindSnapshotResult || len(payload) != 1:
		return fmt.Errorf("%w: %s frame of %d bytes instead of a snapshot result", ErrProtocol, kind, len(payload))
	case payload[0] != 1:
		return ErrSnapshotNotStored
	}
	return nil
}

// sendChunks copies body to conn as KindSnapshotChunk frames and returns
// its length.
func (t *Transport) sendChunks(conn net.Conn, body io.Reader) (int64, error) {
	frame := make([]byte, transport.FrameHeaderSize+chunkSize)
	var total int64
	for {
		n, err := io.ReadFull(body, frame[transport.FrameHeaderSize:])
		if n > 0 {
			chunk := frame[:transport.FrameHeaderSize+n]
			transport.SealFrame(chunk, transport.KindSnapshotChunk)
			if err := t.write(conn, chunk); err != nil {
				return total, err
			}
			t.stats.SentBytes(len(chunk))
			total += int64(n)
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return total, nil
		default:
			return total, fmt.Errorf("read the snapshot body: %w", err)
		}
	}
}

// receiveSnapshot reads the MsgSnap of a snapshot stream from peer from,
// hands it and the body to the Handler, and answers with the result.
func (t *Transport) receiveSnapshot(conn net.Conn, fr *transport.FrameReader, from uint64) error {
	kind, payload, err := fr.Next(nil)
	if err != nil {
		return err
	}
	if kind != transport.KindMessage {
		return fmt.Errorf("%w: %s frame opens a snapshot stream", ErrProtocol, kind)
	}
	m, err := transport.DecodeMessage(payload)
	if err != nil {
		return err
	}
	if err := t.checkInbound(m, from); err != nil {
		return err
	}
	if m.Type != raft.MsgSnap || m.Snapshot == nil {
		return fmt.Errorf("%w: %s opens a snapshot stream", ErrProtocol, m)
	}
	t.stats.Received(raft.MsgSnap, transport.FrameHeaderSize+len(payload))

	body := &chunkReader{t: t, fr: fr}
	stored := t.h.ReceiveSnapshot(m, body)
	if stored == nil {
		// The handler may stop reading early (it had the snapshot
		// already); the rest must still be read to answer.
		_, stored = io.Copy(io.Discard, body)
	}
	if stored != nil {
		t.log.Warn("transport/tcp: snapshot not stored", "peer", from, "index", m.Snapshot.Meta.Index, "err", stored)
	}
	result := []byte{0}
	if stored == nil {
		result[0] = 1
	}
	return t.write(conn, transport.AppendFrame(nil, transport.KindSnapshotResult, result))
}

// chunkReader is the body of an inbound snapshot: an io.Reader over the
// stream's chunk frames, read only as the Handler asks, into one reused
// buffer. It returns io.EOF after KindSnapshotEnd if the length matches.
type chunkReader struct {
	t     *Transport
	fr    *transport.FrameReader
	buf   []byte // the last chunk frame's payload; reused
	chunk []byte // its unread part
	total int64  // body bytes received so far
	err   error  // sticky: io.EOF at the end, or why the stream broke
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.chunk) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.next()
	}
	n := copy(p, r.chunk)
	r.chunk = r.chunk[n:]
	return n, nil
}

func (r *chunkReader) next() {
	kind, payload, err := r.fr.Next(r.buf[:0])
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		r.err = err
		return
	}
	r.t.stats.ReceivedBytes(transport.FrameHeaderSize + len(payload))
	switch kind {
	case transport.KindSnapshotChunk:
		r.buf, r.chunk = payload, payload
		r.total += int64(len(payload))
	case transport.KindSnapshotEnd:
		n, k := binary.Uvarint(payload)
		if k <= 0 || k != len(payload) || n != uint64(r.total) {
			r.err = fmt.Errorf("%w: snapshot body of %d bytes, the sender says %d (%d-byte end frame)", ErrProtocol, r.total, n, len(payload))
			return
		}
		r.err = io.EOF
	default:
		r.err = fmt.Errorf("%w: %s frame inside a snapshot body", ErrProtocol, kind)
	}
}
