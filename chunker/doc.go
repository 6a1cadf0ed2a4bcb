// Package chunker splits a file into ordered, checksummed chunks and merges
// them back, verified.
//
// gapsync moves files between zones that can only exchange database rows,
// so a file travels as a sequence of chunks, each stored in a BLOB row
// with its index, its MD5 and its SHA-256. The file record carries the
// whole-file size, chunk count, MD5 and SHA-256 ([Sums]), and the SM3
// digest where a site asks for the national hash ([Options.SM3]).
//
// # Splitting
//
// [Split] reads a source of known size through an [OpenRange] function,
// one range per chunk. Up to [Options.Concurrency] ranges are read at once,
// each in its own goroutine, which also hashes its chunk. The chunks are
// handed to the emit callback one at a time, from a single goroutine, in
// index order, whatever order the ranges finish in; the whole-file MD5 and
// SHA-256 are computed along the way (concurrently with emit, so emit must
// not modify the chunk's bytes).
//
// Memory is bounded by about (Concurrency+1) × ChunkSize whatever the file
// size: Concurrency chunks being read plus the one being emitted. Buffers
// are reused, so [Chunk.Data] is only valid during the emit call; copy it
// to keep it.
//
// [Options.Store], when set, receives each chunk from the goroutine that
// read it, as soon as it is hashed, so a slow sink (a database insert, a
// request) runs as parallel as the reads; the chunk is emitted only after
// Store returned. [Options.NoChunkMD5] leaves the per-chunk MD5 out (the
// per-chunk SHA-256 and the whole-file MD5 stay), which saves the slowest
// of the four passes over the bytes.
//
// The first error, from a range, from Store or from emit, cancels the context of the
// ranges still being read and is returned. A range that yields fewer bytes
// than asked is an error wrapping [io.ErrUnexpectedEOF].
//
// # Resuming
//
// Split's first argument skips the chunks before it: they are neither read
// nor emitted. The whole-file sums cannot be computed then, so the returned
// [Sums] has Size and Chunks set and MD5 and SHA256 empty; keep the sums of
// the run that started at chunk 0.
//
// # Merging and verification
//
// [NewReader] returns the merged file as an [io.Reader]. It fetches the
// chunks in order, one at a time (memory is one chunk), and checks
// ([NewReaderAhead] fetches a few chunks ahead, concurrently, so that
// fetching overlaps checking and writing):
//
//   - each chunk's MD5 and SHA-256, when the chunk carries them, before any
//     of its bytes are returned;
//   - that no chunk is empty (unless the file is) and the lengths never run
//     past the recorded size;
//   - at the end, that the total size and the whole-file MD5, SHA-256 and
//     SM3 (those set) match.
//
// Every verification failure wraps gapsync.ErrChecksumMismatch and names
// the chunk and the hash that failed. The end-of-file checks replace the
// final [io.EOF]: a reader that fails them never reports a clean end. A
// store that writes from this reader, and keeps nothing when a Read fails,
// therefore never publishes unverified bytes. [Merge] copies such a reader
// into a writer.
//
// # Chunk size, max_allowed_packet and the InnoDB redo log
//
// A chunk is written as one bound parameter of one INSERT. MariaDB and
// MySQL refuse a statement, or a long parameter sent in pieces, larger than
// max_allowed_packet (16 MiB by default in MariaDB), and a row read back is
// limited the same way. So ChunkSize must stay under max_allowed_packet
// with room for the rest of the statement; with client-side interpolation
// (the driver's interpolateParams) a BLOB is escaped and can take up to
// twice its size in the statement text, so stay under half of it. The
// default of 4 MiB ([DefaultChunkSize]) fits a 16 MiB max_allowed_packet
// either way, and a split with the default Concurrency of 4 holds at most
// (4+1) × 4 MiB = 20 MiB of buffers.
//
// Every BLOB write goes through the InnoDB redo log. MySQL refuses BLOB
// data larger than 10% of the redo log in one transaction, and a
// transaction that large stalls MariaDB's checkpointing too; the usual rule
// is innodb_log_file_size (innodb_redo_log_capacity in MySQL 8.0.30+) of at
// least ten times the largest transaction. So keep the chunks written per
// transaction well under a tenth of the redo log: with MariaDB's default
// 96 MiB redo log and 4 MiB chunks, write one or two chunks per
// transaction; to commit k chunks at once, size the redo log at 10 × k ×
// ChunkSize or more. Lowering ChunkSize lowers both limits at the price of
// more rows and statements.
package chunker
