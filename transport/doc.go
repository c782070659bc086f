// Package transport moves raft messages between nodes. It defines the
// Transport interface the runtime (package node) drives, and the wire
// encoding: transport/tcp implements Transport over TCP with the frames
// below, transport/mem in memory for tests (it encodes and decodes every
// message with the same codec, so no two nodes ever share memory).
//
// # Frames
//
// A stream is a sequence of frames. Every frame is a 10-byte header and a
// payload:
//
//	+---------+--------+----------------+----------------+-----------------+
//	| version | kind   | length         | checksum       | payload         |
//	| 1 byte  | 1 byte | 4 bytes        | 4 bytes        | length bytes    |
//	|         |        | uint32, big    | uint32, big    |                 |
//	|         |        | endian         | endian, CRC-32C|                 |
//	|         |        |                | of kind and    |                 |
//	|         |        |                | payload        |                 |
//	+---------+--------+----------------+----------------+-----------------+
//
// A reader checks, in order: version == Version, kind is known, length is
// at most its maximum (before reading or allocating anything), then the
// checksum. Any failure is an error the connection cannot recover from.
//
// # Frame payloads
//
// Integers are unsigned varints (encoding/binary.AppendUvarint) unless a
// size is given; bytes are a uvarint length followed by that many bytes.
//
//	KindHello            stream u8 | from | to | cluster id (bytes, <= 255)
//	KindAccept           empty
//	KindRefuse           reason, UTF-8 text (the rest of the payload)
//	KindMessage          an encoded raft.Message, see below
//	KindSnapshotChunk    the next bytes of a snapshot body
//	KindSnapshotEnd      total body length
//	KindSnapshotResult   u8: 1 stored, 0 failed
//
// An encoded raft.Message:
//
//	+------+-------+------+----+------+---------+-------+--------+------------+-----------+
//	| type | flags | from | to | term | logTerm | index | commit | rejectHint | readRound |
//	| u8   | u8    |                    uvarints                                         |
//	+------+-------+------+----+------+---------+-------+--------+------------+-----------+
//	| context (bytes) | entry count | entries ...       | snapshot meta (if flagged)     |
//	+-----------------+-------------+-------------------+--------------------------------+
//	entry:          term | index | type u8 | data (bytes)
//	snapshot meta:  index | term | voter count | voters ... | learner count | learners ...
//	flags:          bit 0 Reject, bit 1 Snapshot present; other bits must be 0
//
// The snapshot body (Snapshot.Data) never travels inside a message: the
// tcp transport streams it in KindSnapshotChunk frames after the MsgSnap.
//
// # Connections (transport/tcp)
//
// The dialer speaks first: KindHello, answered by KindAccept or KindRefuse
// (a different cluster, an unknown or own id, or a hello meant for another
// node). A message stream (StreamMessages) then carries KindMessage frames
// one way, dialer to acceptor. A snapshot stream (StreamSnapshot) carries
// one MsgSnap message, its body as chunks, KindSnapshotEnd, and is closed
// after the acceptor answers KindSnapshotResult.
package transport
