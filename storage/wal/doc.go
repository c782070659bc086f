// Package wal is raftex's write-ahead log: the durable copy of the Raft log
// and of the hard state (term, vote, commit) that §5.1 requires a server to
// persist before it answers any RPC.
//
// # Segments
//
// The log is a directory of segment files named
//
//	<seq %016x>-<first index %016x>.wal
//
// Sequence numbers are consecutive; a new segment starts when the current
// one has grown past Options.SegmentSize (default 64 MiB), and is created
// as a .tmp file, written, fsynced, renamed and its directory fsynced, so a
// segment either exists with a whole header or not at all. Old segments are
// deleted once a compaction (§7) has left no live entry in them.
//
// # Records
//
// A segment is a sequence of records:
//
//	+----------+--------+----------+---------------------+
//	| length   | type   | CRC-32C  | payload             |
//	| uint32   | uint8  | uint32   | length bytes        |
//	+----------+--------+----------+---------------------+
//	 <------- 9-byte header ------>
//
// Integers are little-endian. The CRC is CRC-32C (Castagnoli) over the
// length, the type and the payload, so it catches a damaged length too.
// Payloads by type:
//
//	header (1)     +---------+---------+-----+-------+------------+-----------+---------+---------+-----------+------------+
//	               | magic   | version | seq | first | base index | base term | hs term | hs vote | hs commit | membership |
//	               | 8 bytes | uint32  | u64 | u64   | u64        | u64       | u64     | u64     | u64       | (below)    |
//	               +---------+---------+-----+-------+------------+-----------+---------+---------+-----------+------------+
//	entry (2)      +------+-------+------+------------+
//	               | term | index | type | data       |
//	               | u64  | u64   | u8   | rest       |
//	               +------+-------+------+------------+
//	hard state (3) +------+------+--------+
//	               | term | vote | commit |
//	               | u64  | u64  | u64    |
//	               +------+------+--------+
//	compact (4)    +-------+------+   entries <= index are dropped; index had term (§7)
//	reset (5)      | index | term |   the whole log is replaced by a snapshot at index (§7)
//	               | u64   | u64  |
//	               +-------+------+
//	membership (6) +----------+--------+-------------+----------+   the bootstrap membership
//	               | nvoters  | voters | nlearners   | learners |
//	               | uint32   | u64... | uint32      | u64...   |
//	               +----------+--------+-------------+----------+
//	commit (7)     +-------------+   ends a batch; offset of its first record
//	               | batch start |
//	               | u64         |
//	               +-------------+
//
// A segment opens with one header record, which states the log as it was
// when the segment was created (first index, compaction point, hard state,
// membership), so deleting older segments loses nothing. Then come
// batches: the records of one write followed by a commit record. A batch
// is written with one write and one fsync (group commit), and it counts
// only once its commit record is read back: a batch is all or nothing.
// Suffix truncation (§5.3) is an entry record whose index is at or below
// the last one; prefix compaction (§7) is a compact record followed by the
// deletion of whole segments. Both are therefore atomic with their batch
// and survive a crash at any point.
//
// # Recovery
//
// Open reads every segment and verifies every CRC. A batch is acknowledged
// only after its fsync, and only the last segment is ever written without
// having been synced, so damage can be a torn write only at the end of the
// last segment. Damage is a torn tail when no complete batch follows it:
// the scan looks past the damage for valid commit records (they have a
// fixed size, so this is one linear pass), and finds none but the torn
// batch's own. Then the tail is cut back to the last complete batch, after
// a copy of the segment is saved as <segment>.broken. Any other damage (a
// CRC failure, a bad header, a missing segment, entries that do not follow
// on) is corruption: Open refuses with a *CorruptError naming the file, the
// offset and the last good index, and changes nothing.
//
// One limit: an entry whose data embeds a well-formed commit record can
// make a later torn tail look like corruption. Open then refuses to start;
// it never loses acknowledged data.
package wal
