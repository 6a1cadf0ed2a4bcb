package syncer

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"golang.org/x/sync/errgroup"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/chunker"
	"github.com/gapsync/gapsync/pathmap"
	"github.com/gapsync/gapsync/throttle"
)

// FileDB is what the file flow needs of a zone's database: the staging
// tables file_record and file_chunk, and path_mapping. storage's *DB is
// one. It is optional: a role whose database does not implement it, or
// whose FileOptions has no Store, moves no files.
type FileDB interface {
	NoteFiles(ctx context.Context, origin gapsync.Side, refs []string) (int, error)
	NoteBatchFiles(ctx context.Context, t gapsync.Table, origin gapsync.Side, b *batch.Batch) (int, error)
	FileRecords(ctx context.Context, origin gapsync.Side, limit int, statuses ...string) ([]gapsync.FileRecord, error)
	FileRecord(ctx context.Context, id string) (gapsync.FileRecord, error)
	PutFileRecords(ctx context.Context, fs []gapsync.FileRecord) error
	FileRecordsByID(ctx context.Context, ids []string) (map[string]gapsync.FileRecord, error)
	UnackedFiles(ctx context.Context, origin gapsync.Side, limit int) ([]gapsync.FileRecord, error)
	AckFiles(ctx context.Context, ids []string) error
	PutChunks(ctx context.Context, cs []gapsync.Chunk) error
	GetChunk(ctx context.Context, fileID string, idx int) (gapsync.Chunk, error)
	GetChunks(ctx context.Context, keys []gapsync.ChunkKey) ([]gapsync.Chunk, error)
	HeldChunks(ctx context.Context, ids []string) (map[string][]int, error)
	AckChunks(ctx context.Context, fileID string, idxs []int) error
	AllChunksSynced(ctx context.Context, fileID string) (bool, error)
	DeleteChunks(ctx context.Context, fileID string, idxs []int) error
	SameContent(ctx context.Context, sha, id string) (gapsync.FileRecord, bool, error)
	SameSize(ctx context.Context, size int64, id string) (bool, error)
	AddMappings(ctx context.Context, m map[string]string) error
	RewriteRefsMany(ctx context.Context, refs map[string]string) (int, error)
	ChunkSums(ctx context.Context, fileID string) (map[int]string, error)
	PurgeChunks(ctx context.Context, status string, before time.Time) (int, error)
}

// FileOptions configure the file flow of one role.
type FileOptions struct {
	// Store is this zone's file store: where references in its rows point
	// and where the other side's files are published. Nil: no file flow.
	Store FileStore
	// URLStore serves references that are http(s) URLs (an httpstore with
	// its allowlist). Nil: URL references fail with gapsync.ErrForbiddenURL.
	URLStore FileStore
	// StripPrefix is removed from path references before they are keys
	// (for rows that hold "/uploads/a.png" for the key "a.png").
	StripPrefix string
	// KeyPrefix is where the other side's files are published here; the
	// default is "from-internet/" or "from-intranet/".
	KeyPrefix string
	// RefPrefix is put before a published key to make the reference that
	// rows here hold (often the same as StripPrefix). Default "".
	RefPrefix string
	// ChunkSize of the pieces files travel in. Default chunker.DefaultChunkSize
	// (4 MiB; see package chunker for its relation to max_allowed_packet).
	ChunkSize int64
	// Concurrency: ranges read at once when staging. Default 4.
	Concurrency int
	// Transfers: chunk batches in flight at once when sending or fetching.
	// Default 4. Memory of a transfer is about Transfers × BatchBytes × 3
	// (chunks, frame, envelope).
	Transfers int
	// BatchBytes caps the chunks sent or fetched in one request, and the
	// small files staged into the database at once. Default 4 MiB (one
	// default chunk; 512 files of 8 KiB); keep it under the gateway's
	// body cap.
	BatchBytes int64
	// Retention keeps a published file's chunks this long. Default 24h; a
	// negative value purges at once.
	Retention time.Duration
	// MaxAttempts before a failing file rests: it is tried again once
	// every RetryAfter from then on. Default 5.
	MaxAttempts int
	// RetryAfter is how often a file that failed MaxAttempts times is
	// tried again, so that an outage longer than a few runs (of the
	// store, say) does not strand it. Default 1 hour.
	RetryAfter time.Duration
	// Progress, when set, is called as bytes move (from several
	// goroutines; keep it quick).
	Progress func(gapsync.Progress)

	// Staging limits, so that a store that stalls or trickles bytes (an
	// allowlisted HTTP server, say) cannot hold a cycle. Every range read
	// fails when no byte arrives for IdleTimeout (default 30 s; negative:
	// none). Staging a file — its Stat, its reads and, for a large file,
	// the sending of its chunks while it is read — fails after
	// FileTimeout + size/MinRate (defaults 1 minute and 64 KiB/s: the
	// floor of a healthy transfer, paced by the database as much as by
	// the store). A file that failed so is retried
	// next cycle like any failure; once FileTimeout has passed, a file
	// read slower than MinRate on average is cut at once rather than at
	// its deadline, so a server that trickles bytes holds it about
	// FileTimeout, whatever size it announces. After StageTime of a
	// cycle's staging (default: the coordinator's Interval; 5 minutes for
	// the intranet worker) no further file starts; those wait for the
	// next cycle, with no attempt counted, so a cycle's staging ends
	// within StageTime plus the time of the files then in progress.
	IdleTimeout time.Duration
	FileTimeout time.Duration
	MinRate     int64 // bytes per second
	StageTime   time.Duration

	// Digest adds a whole-file digest beside MD5 and SHA-256: "sm3" gives
	// every file this side stages an SM3 digest (GB/T 32905), for sites
	// whose security review asks for the national hash; publishing checks
	// it exactly as it checks SHA-256 (a mismatch publishes nothing and
	// fetches the bad chunks again). "" (the default) adds none. Set the
	// same on the coordinator, the intranet worker and the gateway
	// (GatewayOptions.FileDigest): a record whose digest does not match
	// the receiving side's setting is refused when it is offered or
	// pulled, with gapsync.ErrDigestMismatch.
	Digest string
}

// DigestSM3 is the FileOptions.Digest (and GatewayOptions.FileDigest)
// that adds an SM3 digest to every file record.
const DigestSM3 = "sm3"

func checkDigest(what, d string) error {
	if d != "" && d != DigestSM3 {
		return fmt.Errorf("syncer: %s %q: want %q or empty", what, d, DigestSM3)
	}
	return nil
}

// digestAgrees refuses a complete record from the other side whose SM3
// digest is there or missing against this side's setting d, naming the
// setting to change. A partial record carries no sums and always agrees.
func digestAgrees(r gapsync.FileRecord, d, here string) error {
	if r.Status == gapsync.FilePartial || (r.SM3 != "") == (d == DigestSM3) {
		return nil
	}
	has, want := "no SM3 digest", "an SM3 digest (-file-digest sm3)"
	if r.SM3 != "" {
		has, want = "an SM3 digest", "none (-file-digest unset)"
	}
	return fmt.Errorf("%w: file %s from the %s zone carries %s, and %s expects %s: set the same -file-digest (FileOptions.Digest, GatewayOptions.FileDigest) on the internet, external and intranet mains",
		gapsync.ErrDigestMismatch, r.Ref, r.Origin, has, here, want)
}

func (o *FileOptions) withDefaults(local gapsync.Side) FileOptions {
	var r FileOptions
	if o != nil {
		r = *o
	}
	if r.KeyPrefix == "" {
		other := gapsync.Internet
		if local == gapsync.Internet {
			other = gapsync.Intranet
		}
		r.KeyPrefix = "from-" + string(other) + "/"
	}
	if r.ChunkSize <= 0 {
		r.ChunkSize = chunker.DefaultChunkSize
	}
	if r.Concurrency <= 0 {
		r.Concurrency = 4
	}
	if r.Transfers <= 0 {
		r.Transfers = 4
	}
	if r.BatchBytes <= 0 {
		r.BatchBytes = 4 << 20
	}
	if r.Retention == 0 {
		r.Retention = 24 * time.Hour
	}
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 5
	}
	if r.RetryAfter <= 0 {
		r.RetryAfter = time.Hour
	}
	if r.IdleTimeout == 0 {
		r.IdleTimeout = DefaultIdleTimeout
	}
	if r.FileTimeout <= 0 {
		r.FileTimeout = DefaultFileTimeout
	}
	if r.MinRate <= 0 {
		r.MinRate = DefaultMinRate
	}
	if r.StageTime <= 0 {
		r.StageTime = DefaultStageTime
	}
	return r
}

// fileFlow is the part of the file flow both roles share.
type fileFlow struct {
	db    FileDB
	opts  FileOptions
	local gapsync.Side
	log   *slog.Logger
	// stagePace paces the chunks staged into the database (the intranet
	// worker's; the coordinator paces its chunks over the gateway).
	stagePace *throttle.Throttler
}

func (f *fileFlow) progress(p gapsync.Progress) {
	if f.opts.Progress != nil {
		f.opts.Progress(p)
	}
}

// stage reads the bytes of this side's referenced files into the database
// as chunks (seed 1.1.4 and 1.4.1): for each extracted record, stat the
// file, split it, store the chunks, record the sums. Files of one chunk
// are read Concurrency at a time and written many to a statement, up to
// BatchBytes at once; larger files are split one after the other, their
// chunks stored Concurrency at a time. Memory stays about BatchBytes plus
// Concurrency chunks. Each file is read at the version its Stat gave
// (where the store can tell), within its deadline; see FileOptions for
// the limits.
func (f *fileFlow) stage(ctx context.Context, early earlySender) (int, error) {
	start := time.Now()
	late := func() bool { return time.Since(start) >= f.opts.StageTime }
	recs, err := f.db.FileRecords(ctx, f.local, 0, gapsync.FileExtracted, gapsync.FileFailed)
	if err != nil {
		return 0, err
	}
	var (
		mu     sync.Mutex
		errs   []error
		done   []gapsync.FileRecord // staged or failed, not yet written
		chunks []gapsync.Chunk      // of the staged small files in done
		bytes  int64
		large  = map[int]FileInfo{} // files of more than one chunk, by index into recs
		n      int
	)
	fail := func(rec gapsync.FileRecord, err error) {
		rec.Status, rec.Error, rec.Attempts = gapsync.FileFailed, err.Error(), rec.Attempts+1
		if errors.Is(err, gapsync.ErrBadPath) || errors.Is(err, gapsync.ErrForbiddenURL) {
			rec.Status = gapsync.FileRefused // never fetched, never retried
		}
		if restageLater(err) {
			// Being written: staged whole next cycle, not a failure
			// that should make it rest.
			rec.Attempts--
			f.log.Info("file changed while staged; it is staged again next cycle", "ref", rec.Ref, "err", err)
			errs = append(errs, fmt.Errorf("stage %s: %w", rec.Ref, err))
			done = append(done, rec)
			return
		}
		f.log.Warn("file not staged", "ref", rec.Ref, "attempt", rec.Attempts, "err", err)
		errs = append(errs, fmt.Errorf("stage %s: %w", rec.Ref, err))
		done = append(done, rec)
	}
	// flush writes the chunks, then the records, of what is done; a
	// record says stored only once its chunk is.
	flush := func() error {
		if len(done) == 0 {
			return nil
		}
		if err := f.stagePace.WaitFiles(ctx, chunkBytes(chunks)); err != nil {
			return err
		}
		if err := f.db.PutChunks(ctx, chunks); err != nil {
			return err
		}
		if err := f.db.PutFileRecords(ctx, done); err != nil {
			return err
		}
		for _, rec := range done {
			if rec.Status == gapsync.FileStored {
				n++
				f.log.Info("file staged", "ref", rec.Ref, "bytes", rec.Size, "chunks", rec.Chunks, "sha256", rec.SHA256)
			}
		}
		done, chunks, bytes = done[:0], chunks[:0], 0
		return nil
	}
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(f.opts.Concurrency)
	skipped := 0
	for i, rec := range recs {
		if f.resting(rec) {
			continue
		}
		if late() {
			skipped++
			continue
		}
		eg.Go(func() error {
			var (
				st   FileStore
				key  string
				info FileInfo
				c    gapsync.Chunk
			)
			err := f.withDeadline(gctx, 0, func(ctx context.Context) (err error) {
				st, key, info, err = f.stat(ctx, rec)
				return err
			})
			if err == nil && info.Size > f.opts.ChunkSize {
				mu.Lock()
				large[i] = info
				mu.Unlock()
				return nil
			}
			if err == nil {
				err = f.withDeadline(gctx, info.Size, func(ctx context.Context) (err error) {
					rec, c, err = f.readSmall(ctx, st, key, rec, info)
					return err
				})
			}
			if gctx.Err() != nil {
				return gctx.Err()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fail(rec, err)
			} else {
				done = append(done, rec)
				if rec.Chunks > 0 {
					chunks = append(chunks, c)
				}
				bytes += rec.Size
			}
			f.progress(gapsync.Progress{Step: "stage", File: rec.Ref, BytesDone: rec.Size, BytesTotal: rec.Size, FilesDone: n + len(done), FilesTotal: len(recs)})
			if bytes >= f.opts.BatchBytes || len(done) >= maxRecordsPerReq {
				return flush()
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		// Record the failures noted so far (best effort: the database
		// may be what failed); the rest is retried next cycle.
		var failed []gapsync.FileRecord
		for _, rec := range done {
			if rec.Status == gapsync.FileFailed || rec.Status == gapsync.FileRefused {
				failed = append(failed, rec)
			}
		}
		return n, errors.Join(append(errs, err, f.db.PutFileRecords(context.WithoutCancel(ctx), failed))...)
	}
	if err := flush(); err != nil {
		return n, errors.Join(append(errs, err)...)
	}
	for _, i := range slices.Sorted(maps.Keys(large)) {
		rec := recs[i]
		if late() {
			skipped++
			continue
		}
		err := f.withDeadline(ctx, large[i].Size, func(ctx context.Context) error {
			return f.stageLarge(ctx, rec, large[i], i, len(recs), early)
		})
		if err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			fail(rec, err)
			if err := flush(); err != nil {
				return n, errors.Join(append(errs, err)...)
			}
			continue
		}
		n++
	}
	if skipped > 0 {
		f.log.Info("staging time of the cycle used up; the other files are staged next cycle", "files", skipped, "stage_time", f.opts.StageTime)
	}
	return n, errors.Join(errs...)
}

// stat finds the store, key and size of a record's file.
func (f *fileFlow) stat(ctx context.Context, rec gapsync.FileRecord) (FileStore, string, FileInfo, error) {
	st, key, err := f.storeFor(rec.Ref)
	if err != nil {
		return nil, "", FileInfo{}, err
	}
	info, err := st.Stat(ctx, key)
	if err == nil && gapsync.ChunkCount(info.Size, f.opts.ChunkSize) > gapsync.MaxChunks {
		err = fmt.Errorf("%w: %s: %d bytes make more than %d chunks of %d; raise FileOptions.ChunkSize", gapsync.ErrTooLarge, rec.Ref, info.Size, gapsync.MaxChunks, f.opts.ChunkSize)
	}
	return st, key, info, err
}

// readSmall reads a file of at most one chunk and returns its record,
// stored, with the chunk.
func (f *fileFlow) readSmall(ctx context.Context, st FileStore, key string, rec gapsync.FileRecord, info FileInfo) (gapsync.FileRecord, gapsync.Chunk, error) {
	var c gapsync.Chunk
	sums, err := chunker.Split(ctx, info.Size, f.opener(st, key, info), &chunker.Options{ChunkSize: f.opts.ChunkSize, Concurrency: 1, NoChunkMD5: true, SM3: f.opts.Digest == DigestSM3}, 0,
		func(ch chunker.Chunk) error {
			c = gapsync.Chunk{FileID: rec.ID, Idx: ch.Index, MD5: ch.MD5, SHA256: ch.SHA256, Data: slices.Clone(ch.Data)}
			return nil
		})
	if err != nil {
		return rec, c, err
	}
	return staged(rec, sums, f.opts.ChunkSize), c, nil
}

// staged returns rec as stored with the given sums.
func staged(rec gapsync.FileRecord, sums chunker.Sums, chunkSize int64) gapsync.FileRecord {
	rec.Size, rec.MD5, rec.SHA256, rec.SM3, rec.ChunkSize, rec.Chunks = sums.Size, sums.MD5, sums.SHA256, sums.SM3, chunkSize, sums.Chunks
	rec.Status, rec.Error = gapsync.FileStored, ""
	return rec
}

// resting reports whether rec failed MaxAttempts times and was tried
// last less than RetryAfter ago.
func (f *fileFlow) resting(rec gapsync.FileRecord) bool {
	return rec.Attempts >= f.opts.MaxAttempts && time.Since(rec.Changed) < f.opts.RetryAfter
}

// storeFor picks the store and key of a reference.
func (f *fileFlow) storeFor(ref string) (FileStore, string, error) {
	key, err := pathmap.Normalize(ref, f.opts.StripPrefix)
	if err != nil {
		return nil, "", err
	}
	if strings.HasPrefix(key, "http://") || strings.HasPrefix(key, "https://") {
		if f.opts.URLStore == nil {
			return nil, "", fmt.Errorf("%w: %s: no URL store configured", gapsync.ErrForbiddenURL, ref)
		}
		return f.opts.URLStore, key, nil
	}
	return f.opts.Store, key, nil
}

// earlySender sends the chunks of a large file while it is staged: it
// offers the file before its sums are known (a partial record) and
// returns the chunks the other side needs, then sends them one by one.
type earlySender interface {
	// offerPartial returns the chunks the other side lacks, and the
	// SHA-256 of those it holds from an earlier attempt.
	offerPartial(ctx context.Context, rec gapsync.FileRecord) (need []int, held map[int]string, err error)
	sendEarly(ctx context.Context, rec gapsync.FileRecord, c gapsync.Chunk) error
}

// stageLarge splits a file of several chunks, storing its chunks as they
// are read, Concurrency at a time, and then its record. With an
// earlySender, each chunk the other side needs is also sent from the same
// buffer while it is stored: the file crosses while it is read, instead
// of being read back from this database afterwards. Sending is
// best-effort: on the first failure it stops, and the chunks go with the
// regular push once the file is stored.
func (f *fileFlow) stageLarge(ctx context.Context, rec gapsync.FileRecord, info FileInfo, i, total int, early earlySender) error {
	st, key, err := f.storeFor(rec.Ref)
	if err != nil {
		return err
	}
	var need map[int]bool
	var held map[int]string
	var sending atomic.Bool
	if early != nil {
		// A file as large as one already here may be a copy, which must
		// cross once: it waits for its sums and the regular offer.
		if dup, err := f.db.SameSize(ctx, info.Size, rec.ID); err != nil || dup {
			early = nil
		}
	}
	if early != nil {
		p := rec
		p.Size, p.ChunkSize, p.Chunks = info.Size, f.opts.ChunkSize, chunker.Count(info.Size, f.opts.ChunkSize)
		p.MD5, p.SHA256, p.SM3, p.Status, p.Error, p.Attempts = "", "", "", gapsync.FilePartial, "", 0
		if idxs, h, err := early.offerPartial(ctx, p); err != nil {
			f.log.Warn("file not sent while staged; it goes once stored", "ref", rec.Ref, "err", err)
		} else {
			need, held = make(map[int]bool, len(idxs)), h
			for _, i := range idxs {
				need[i] = true
			}
			sending.Store(true)
		}
	}
	var done atomic.Int64
	open := f.opener(st, key, info)
	put := func(ctx context.Context, c chunker.Chunk) error {
		ch := gapsync.Chunk{FileID: rec.ID, Idx: c.Index, MD5: c.MD5, SHA256: c.SHA256, Data: c.Data}
		var wg sync.WaitGroup
		sum, kept := held[c.Index]
		if sending.Load() && (need[c.Index] || (kept && sum != c.SHA256)) {
			wg.Go(func() {
				if err := early.sendEarly(ctx, rec, ch); err != nil && sending.Swap(false) && ctx.Err() == nil {
					f.log.Warn("sending while staging stopped; the rest goes once stored", "ref", rec.Ref, "chunk", c.Index, "err", err)
				}
			})
		}
		err := f.stagePace.WaitFiles(ctx, int64(len(ch.Data)))
		if err == nil {
			err = f.db.PutChunks(ctx, []gapsync.Chunk{ch})
		}
		wg.Wait()
		if err != nil {
			return err
		}
		f.progress(gapsync.Progress{Step: "stage", File: rec.Ref, BytesDone: done.Add(int64(len(c.Data))), BytesTotal: info.Size, FilesDone: i, FilesTotal: total})
		return nil
	}
	sums, err := chunker.Split(ctx, info.Size, open, &chunker.Options{ChunkSize: f.opts.ChunkSize, Concurrency: f.opts.Concurrency, Store: put, NoChunkMD5: true,
		SM3: f.opts.Digest == DigestSM3}, 0,
		func(chunker.Chunk) error { return nil })
	if err != nil {
		return err
	}
	rec = staged(rec, sums, f.opts.ChunkSize)
	f.log.Info("file staged", "ref", rec.Ref, "bytes", sums.Size, "chunks", sums.Chunks, "sha256", sums.SHA256)
	return f.db.PutFileRecords(ctx, []gapsync.FileRecord{rec})
}

// localKey is where a file of the other side is published here: the key
// prefix and the reference's pathmap.PublishKey, which no other reference
// shares (a URL keeps its scheme, host, port and query apart).
func (f *fileFlow) localKey(rec gapsync.FileRecord) (string, error) {
	key, err := pathmap.PublishKey(rec.Ref, f.opts.StripPrefix)
	if err != nil {
		return "", err
	}
	key = f.opts.KeyPrefix + key
	return key, gapsync.CleanKey(key)
}

// deliver merges the chunks of a complete incoming record, verifies them
// and writes the file to this side's store (seed 1.3.4 and 1.4.5), and
// returns its key. Nothing unverified is published: the store writes from
// a reader that fails instead of ending when a sum does not match, and a
// store stores nothing then. The corrupt chunks are dropped so that the
// next cycle fetches them again. data, when not nil, is the whole file
// already read (a file of at most one chunk). On failure the record comes
// back with its error and attempts, to be written.
func (f *fileFlow) deliver(ctx context.Context, rec gapsync.FileRecord, data []byte) (gapsync.FileRecord, string, error) {
	rec, key, err := f.target(rec)
	if err != nil {
		return rec, "", err
	}
	r, done, err := f.source(ctx, rec, data)
	if err != nil {
		return rec, "", err
	}
	defer done()
	err = f.opts.Store.Put(ctx, key, r, rec.Size, FileInfo{Key: key, Size: rec.Size, MD5: rec.MD5, SHA256: rec.SHA256})
	if err != nil {
		return f.notStored(ctx, rec, err)
	}
	return rec, key, nil
}

// target is localKey, with a reference no store here may hold refused.
func (f *fileFlow) target(rec gapsync.FileRecord) (gapsync.FileRecord, string, error) {
	key, err := f.localKey(rec)
	if err != nil {
		rec.Status, rec.Error = gapsync.FileRefused, err.Error()
	}
	return rec, key, err
}

// publishBatch writes the files of recs whose bytes data holds to bs in
// one PutBatch, passing each outcome to finish as deliver returns it, and
// returns the records it did not take.
func (f *fileFlow) publishBatch(ctx context.Context, bs BatchStore, recs []gapsync.FileRecord, data map[string][]byte, finish func(gapsync.FileRecord, string, error)) []gapsync.FileRecord {
	var (
		rest, batch []gapsync.FileRecord
		items       []PutItem
	)
	for _, rec := range recs {
		b, ok := data[rec.ID]
		if !ok {
			rest = append(rest, rec)
			continue
		}
		rec, key, err := f.target(rec)
		if err != nil {
			finish(rec, "", err)
			continue
		}
		r, _, _ := f.source(ctx, rec, b) // from memory: no error, nothing to close
		batch = append(batch, rec)
		items = append(items, PutItem{Key: key, R: r, Size: rec.Size, Info: FileInfo{Key: key, Size: rec.Size, MD5: rec.MD5, SHA256: rec.SHA256}})
	}
	if len(items) == 0 {
		return rest
	}
	errs := bs.PutBatch(ctx, items)
	for i, rec := range batch {
		if i < len(errs) && errs[i] == nil {
			finish(rec, items[i].Key, nil)
			continue
		}
		err := errors.New("the store returned no outcome for this file")
		if i < len(errs) {
			err = errs[i]
		}
		finish(f.notStored(ctx, rec, err))
	}
	return rest
}

// source returns a reader of rec's bytes that fails instead of ending
// when they do not match its sums (see deliver), and what to call once it
// is read.
func (f *fileFlow) source(ctx context.Context, rec gapsync.FileRecord, data []byte) (io.Reader, func(), error) {
	sums := chunker.Sums{Size: rec.Size, Chunks: rec.Chunks, MD5: rec.MD5, SHA256: rec.SHA256, SM3: rec.SM3}
	if data != nil {
		return chunker.NewReader(ctx, sums, func(ctx context.Context, i int) (chunker.Chunk, error) {
			return chunker.Chunk{Index: i, Data: data}, nil
		}), func() {}, nil
	}
	if twin, ok, err := f.db.SameContent(ctx, rec.SHA256, rec.ID); err != nil {
		return nil, nil, err
	} else if ok && twin.Status == gapsync.FilePublished && twin.LocalKey != "" {
		// The same bytes are here already: copy them, verified, instead of
		// waiting for them to cross again.
		rc, err := f.opts.Store.OpenRange(ctx, twin.LocalKey, 0, rec.Size)
		if err != nil {
			return nil, nil, err
		}
		return verifying(rc, rec), func() { rc.Close() }, nil
	}
	return chunker.NewReaderAhead(ctx, sums, readAhead, func(ctx context.Context, i int) (chunker.Chunk, error) {
		c, err := f.db.GetChunk(ctx, rec.ID, i)
		if err != nil {
			return chunker.Chunk{}, err
		}
		// The whole-file sums decide; the chunk sums only find the bad
		// chunks after a mismatch (badChunks), which saves two of four
		// hash passes over every byte.
		return chunker.Chunk{Index: i, Data: c.Data}, nil
	}), func() {}, nil
}

// notStored is what a failed store write of rec leaves: the record with
// its error and attempts, and for bytes that did not match their sums,
// the corrupt chunks dropped so that the next cycle fetches them again.
func (f *fileFlow) notStored(ctx context.Context, rec gapsync.FileRecord, err error) (gapsync.FileRecord, string, error) {
	rec.Error, rec.Attempts = err.Error(), rec.Attempts+1
	if errors.Is(err, gapsync.ErrChecksumMismatch) {
		bad, derr := f.badChunks(ctx, rec)
		f.log.Warn("file failed verification; nothing published, corrupt chunks dropped", "ref", rec.Ref, "chunks", bad, "err", err)
		err = errors.Join(err, derr, f.db.DeleteChunks(ctx, rec.ID, bad))
	}
	return rec, "", err
}

// publishAll publishes recs (seed 1.3.4 and 1.4.5) and returns the ids
// of those published and how many failed; the error joins the failures
// of single files. With haveChunks, every chunk of every record is here:
// files of at most one chunk are read a page at a time (up to BatchBytes)
// and written Concurrency at a time, and each page is recorded at once
// (mappings, references, records). Without it, the files are copies of
// content published here already. Larger files go one at a time, each
// reading readAhead chunks ahead, so memory stays a few chunks.
func (f *fileFlow) publishAll(ctx context.Context, recs []gapsync.FileRecord, total int, haveChunks bool) ([]string, int, error) {
	var (
		published []string
		failed    int
		errs      []error
	)
	// The store writes of a page overlap the records of the page before
	// (its mappings, references and records, in order, one page at a
	// time): a file stored before it is recorded is stored again by the
	// next cycle, as after a kill between the two.
	type stored struct {
		recs []gapsync.FileRecord
		d    delivery
		err  error
	}
	pages := make(chan stored, 1)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		for p := range pages {
			var ids []string
			var n int
			var err error
			if p.err != nil {
				ids, n, err = f.pageFailed(ctx, p.recs, p.err)
			} else {
				ids, n, err = f.recordPage(ctx, p.recs, total, p.d)
			}
			published, failed, errs = append(published, ids...), failed+n, append(errs, err)
		}
	}()
	for len(recs) > 0 && ctx.Err() == nil {
		page, size := 0, int64(0)
		for page < len(recs) && page < offerPage && (page == 0 || (recs[page].Chunks <= 1 && size+recs[page].Size <= f.opts.BatchBytes)) {
			if recs[page].Chunks > 1 {
				page++
				break // a large file makes a page of its own
			}
			size += recs[page].Size
			page++
		}
		var data map[string][]byte
		var err error
		if haveChunks {
			data, err = f.pageData(ctx, recs[:page])
		}
		var d delivery
		if err == nil {
			d, err = f.deliverPage(ctx, recs[:page], data)
		}
		pages <- stored{recs[:page], d, err}
		recs = recs[page:]
	}
	close(pages)
	<-recorded
	return published, failed, errors.Join(append(errs, ctx.Err())...)
}

// pageData reads the bytes of the files of at most one chunk among recs
// (an empty slice for an empty file), by id.
func (f *fileFlow) pageData(ctx context.Context, recs []gapsync.FileRecord) (map[string][]byte, error) {
	data := map[string][]byte{}
	var keys []gapsync.ChunkKey
	for _, rec := range recs {
		if rec.Chunks == 1 {
			keys = append(keys, gapsync.ChunkKey{FileID: rec.ID})
		} else if rec.Chunks == 0 {
			data[rec.ID] = []byte{}
		}
	}
	cs, err := f.db.GetChunks(ctx, keys)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		data[c.FileID] = c.Data
	}
	return data, nil
}

// pageFailed records that a step failed a whole page: it counts an
// attempt on each of its files, so that a failure that persists (a
// reference rewrite a trigger refuses, say) stops after MaxAttempts
// instead of writing the files to the store again every run.
func (f *fileFlow) pageFailed(ctx context.Context, recs []gapsync.FileRecord, err error) ([]string, int, error) {
	if ctx.Err() != nil {
		return nil, 0, err
	}
	failed := slices.Clone(recs)
	for i := range failed {
		failed[i].Error, failed[i].Attempts = err.Error(), failed[i].Attempts+1
	}
	f.log.Warn("files not published", "files", len(recs), "err", err)
	return nil, len(recs), errors.Join(err, f.db.PutFileRecords(ctx, failed))
}

// publishPage delivers one page of files and records the result. data
// holds the bytes of the files read already, by id; the others are read
// from their chunks here, or copied from the same content published here
// (see deliver).
func (f *fileFlow) publishPage(ctx context.Context, recs []gapsync.FileRecord, total int, data map[string][]byte) ([]string, int, error) {
	d, err := f.deliverPage(ctx, recs, data)
	if err != nil {
		return nil, 0, err
	}
	return f.recordPage(ctx, recs, total, d)
}

// delivery is what deliverPage did with a page: the records to write
// (published or failed), the references of those published, and the
// failures.
type delivery struct {
	writes []gapsync.FileRecord
	refs   map[string]string
	errs   []error
}

// deliverPage writes the files of a page to the store (see
// publishPage); its error is ctx's alone.
func (f *fileFlow) deliverPage(ctx context.Context, recs []gapsync.FileRecord, data map[string][]byte) (delivery, error) {
	var (
		mu sync.Mutex
		d  = delivery{refs: map[string]string{}}
		eg errgroup.Group
	)
	finish := func(rec gapsync.FileRecord, key string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			d.errs = append(d.errs, fmt.Errorf("publish %s: %w", rec.Ref, err))
			d.writes = append(d.writes, rec)
			return
		}
		rec.Status, rec.Error, rec.LocalKey = gapsync.FilePublished, "", key
		d.writes = append(d.writes, rec)
		d.refs[rec.Ref] = f.opts.RefPrefix + key
	}
	rest := recs
	if bs, ok := f.opts.Store.(BatchStore); ok {
		// The files read already go in one batch, sharing its syncs.
		rest = f.publishBatch(ctx, bs, recs, data, finish)
	}
	eg.SetLimit(f.opts.Concurrency)
	for _, rec := range rest {
		eg.Go(func() error {
			finish(f.deliver(ctx, rec, data[rec.ID]))
			return nil
		})
	}
	eg.Wait()
	return d, ctx.Err()
}

// recordPage records what deliverPage did with recs.
func (f *fileFlow) recordPage(ctx context.Context, recs []gapsync.FileRecord, total int, d delivery) ([]string, int, error) {
	pageFailed := func(err error) ([]string, int, error) { return f.pageFailed(ctx, recs, err) }
	// The mapping and the references first: a record says published
	// only once rows point at the file.
	if err := f.db.AddMappings(ctx, d.refs); err != nil {
		return pageFailed(err)
	}
	n, err := f.db.RewriteRefsMany(ctx, d.refs)
	if err != nil {
		return pageFailed(err)
	}
	if err := f.db.PutFileRecords(ctx, d.writes); err != nil {
		return pageFailed(err)
	}
	var ids []string
	for _, rec := range d.writes {
		if rec.Status == gapsync.FilePublished {
			ids = append(ids, rec.ID)
			f.log.Info("file published", "ref", rec.Ref, "key", rec.LocalKey, "bytes", rec.Size)
			f.progress(gapsync.Progress{Step: "publish", File: rec.Ref, BytesDone: rec.Size, BytesTotal: rec.Size, FilesTotal: total})
		}
	}
	if n > 0 {
		f.log.Info("references rewritten", "files", len(d.refs), "rows", n)
	}
	return ids, len(d.errs), errors.Join(d.errs...)
}

// readAhead is how many chunks a publish fetches beyond the one it
// verifies and writes.
const readAhead = 2

// badChunks returns the chunks of rec whose bytes do not match their own
// sums, or all of them when each matches but the whole does not.
func (f *fileFlow) badChunks(ctx context.Context, rec gapsync.FileRecord) ([]int, error) {
	var bad, all []int
	for i := 0; i < rec.Chunks; i++ {
		all = append(all, i)
		c, err := f.db.GetChunk(ctx, rec.ID, i)
		if err != nil {
			bad = append(bad, i)
			continue
		}
		m, s := md5.Sum(c.Data), sha256.Sum256(c.Data)
		if (c.MD5 != "" && hex.EncodeToString(m[:]) != c.MD5) || (c.SHA256 != "" && hex.EncodeToString(s[:]) != c.SHA256) {
			bad = append(bad, i)
		}
	}
	if len(bad) == 0 {
		return all, nil
	}
	return bad, nil
}

// putRecord writes one record.
func putRecord(ctx context.Context, db FileDB, rec gapsync.FileRecord) error {
	return db.PutFileRecords(ctx, []gapsync.FileRecord{rec})
}

// missing returns, for each of recs, the chunk indexes not held here
// (an empty slice when none is missing).
func (f *fileFlow) missing(ctx context.Context, recs ...gapsync.FileRecord) (map[string][]int, error) {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	held, err := f.db.HeldChunks(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]int, len(recs))
	for _, rec := range recs {
		got := make(map[int]bool, len(held[rec.ID]))
		for _, i := range held[rec.ID] {
			got[i] = true
		}
		need := make([]int, 0, max(rec.Chunks-len(got), 0))
		for i := 0; i < rec.Chunks; i++ {
			if !got[i] {
				need = append(need, i)
			}
		}
		out[rec.ID] = need
	}
	return out, nil
}

// purge drops the chunks of files published longer ago than Retention,
// and of partial records (files offered while staged) untouched for
// abandonPartial: their sender gave up, or staged them again from
// scratch.
func (f *fileFlow) purge(ctx context.Context) {
	n, err := f.db.PurgeChunks(ctx, gapsync.FilePublished, time.Now().Add(-max(f.opts.Retention, 0)))
	k, kerr := f.db.PurgeChunks(ctx, gapsync.FilePartial, time.Now().Add(-abandonPartial))
	if err = errors.Join(err, kerr); err != nil {
		f.log.Warn("purge chunks", "err", err)
	}
	if n+k > 0 {
		f.log.Info("purged chunks", "published", n, "abandoned", k)
	}
}

// abandonPartial is how long the chunks of a partial record are kept
// after its last offer.
const abandonPartial = 7 * 24 * time.Hour

// batches groups chunk indexes so that each group carries at most
// BatchBytes, and returns the groups.
func (f *fileFlow) batches(idxs []int, chunkSize int64) [][]int {
	per := int(max(f.opts.BatchBytes/max(chunkSize, 1), 1))
	var out [][]int
	for len(idxs) > 0 {
		n := min(per, len(idxs))
		out = append(out, idxs[:n])
		idxs = idxs[n:]
	}
	return out
}

// parallel runs fn over groups with at most Transfers at once; the
// number of workers is derived from the groups (seed 1.4.4b).
func (f *fileFlow) parallel(ctx context.Context, groups [][]int, fn func(ctx context.Context, g []int) error) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(min(f.opts.Transfers, max(len(groups), 1)))
	for _, g := range groups {
		eg.Go(func() error { return fn(ctx, g) })
	}
	return eg.Wait()
}

// verifying passes r through while hashing it and fails at the end, in
// place of io.EOF, when the bytes differ from rec's size or sums.
func verifying(r io.Reader, rec gapsync.FileRecord) io.Reader {
	v := &verifier{r: r, rec: rec, m: md5.New(), s: sha256.New()}
	if rec.SM3 != "" {
		v.sm3 = sm3.New()
	}
	return v
}

type verifier struct {
	r    io.Reader
	rec  gapsync.FileRecord
	m, s hash.Hash
	sm3  hash.Hash // nil when rec has no SM3 digest
	n    int64
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.m.Write(p[:n])
	v.s.Write(p[:n])
	if v.sm3 != nil {
		v.sm3.Write(p[:n])
	}
	v.n += int64(n)
	if err == io.EOF {
		if v.n != v.rec.Size || (v.rec.MD5 != "" && hex.EncodeToString(v.m.Sum(nil)) != v.rec.MD5) ||
			(v.rec.SHA256 != "" && hex.EncodeToString(v.s.Sum(nil)) != v.rec.SHA256) ||
			(v.sm3 != nil && hex.EncodeToString(v.sm3.Sum(nil)) != v.rec.SM3) {
			return n, fmt.Errorf("%w: copy of %s", gapsync.ErrChecksumMismatch, v.rec.Ref)
		}
	}
	return n, err
}

func chunkBytes(cs []gapsync.Chunk) int64 {
	var n int64
	for _, c := range cs {
		n += int64(len(c.Data))
	}
	return n
}

// newFileFlow returns the file flow of a role, or nil when o has no store.
func newFileFlow(db any, o *FileOptions, local gapsync.Side, log *slog.Logger) (*fileFlow, error) {
	if o == nil || o.Store == nil {
		return nil, nil
	}
	fdb, ok := db.(FileDB)
	if !ok {
		return nil, errors.New("syncer: a file store is configured but the database has no file tables (FileDB)")
	}
	opts := o.withDefaults(local)
	if opts.ChunkSize < gapsync.MinChunkSize || opts.ChunkSize > gapsync.MaxChunkSize {
		return nil, fmt.Errorf("syncer: FileOptions.ChunkSize %d outside %d..%d", opts.ChunkSize, gapsync.MinChunkSize, gapsync.MaxChunkSize)
	}
	if err := checkDigest("FileOptions.Digest", opts.Digest); err != nil {
		return nil, err
	}
	return &fileFlow{db: fdb, opts: opts, local: local, log: log}, nil
}
