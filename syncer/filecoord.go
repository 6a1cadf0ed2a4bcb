package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/throttle"
	"github.com/gapsync/gapsync/transport"
)

// FileTransport is the file part of the gateway protocol; transport's
// *Client implements it. Every call is safe to retry.
type FileTransport interface {
	OfferFiles(ctx context.Context, recs []gapsync.FileRecord) ([]transport.OfferAnswer, error)
	SendChunks(ctx context.Context, cs []gapsync.Chunk) (int, error)
	FileRecords(ctx context.Context, limit int) ([]gapsync.FileRecord, error)
	AckFiles(ctx context.Context, ids []string) error
	GetChunks(ctx context.Context, fileID string, idxs []int) ([]gapsync.Chunk, error)
	AckChunks(ctx context.Context, fileID string, idxs []int) error
}

// FileReport sums up the file flow of one cycle.
type FileReport struct {
	Staged    int   // files whose bytes were read into the internet database
	Sent      int   // internet files whose chunks all reached the intranet database
	Delivered int   // internet files the intranet reports published
	Received  int   // intranet files published to the internet store
	Bytes     int64 // chunk bytes moved either way
}

// files runs the coordinator's file steps: stage internet files, push
// them (seed 1.3.1-1.3.3), pull intranet files and publish them here
// (seed 1.4.2-1.4.5), and purge chunks past their retention.
func (c *Coordinator) files(ctx context.Context, r *FileReport) error {
	ft, ok := c.tr.(FileTransport)
	if !ok {
		return errors.New("syncer: file flow configured but the transport has no file endpoints")
	}
	f := c.fileFlow
	var errs []error
	e := &earlyPush{ft: ft, th: c.opts.Throttle, sent: map[string]int{}}
	n, err := f.stage(ctx, e)
	r.Staged += n
	r.Bytes += e.bytes.Load()
	errs = append(errs, err)
	errs = append(errs, c.pushFiles(ctx, f, ft, e.sent, r))
	errs = append(errs, c.pullFiles(ctx, f, ft, r))
	f.purge(ctx)
	return errors.Join(errs...)
}

// earlyPush is the coordinator's earlySender: it sends the chunks of
// large files while they are staged, and remembers what it sent.
type earlyPush struct {
	ft    FileTransport
	th    *throttle.Throttler // paces the chunks to the file bandwidth
	bytes atomic.Int64
	mu    sync.Mutex
	sent  map[string]int // chunks sent, by file id
}

func (e *earlyPush) offerPartial(ctx context.Context, rec gapsync.FileRecord) ([]int, map[int]string, error) {
	as, err := e.ft.OfferFiles(ctx, []gapsync.FileRecord{rec})
	if err != nil {
		return nil, nil, err
	}
	if len(as) != 1 || as[0].ID != rec.ID {
		return nil, nil, fmt.Errorf("%w: %d answers to a partial offer of %s", gapsync.ErrMalformed, len(as), rec.ID)
	}
	return as[0].Need, as[0].Held, nil
}

func (e *earlyPush) sendEarly(ctx context.Context, rec gapsync.FileRecord, c gapsync.Chunk) error {
	if err := e.th.WaitFiles(ctx, int64(len(c.Data))); err != nil {
		return err
	}
	if _, err := e.ft.SendChunks(ctx, []gapsync.Chunk{c}); err != nil {
		return err
	}
	e.bytes.Add(int64(len(c.Data)))
	e.mu.Lock()
	e.sent[rec.ID]++
	e.mu.Unlock()
	return nil
}

func (c *Coordinator) pushFiles(ctx context.Context, f *fileFlow, ft FileTransport, early map[string]int, r *FileReport) error {
	// Offer every stored file once this cycle, in pages, oldest first.
	recs, err := f.db.FileRecords(ctx, gapsync.Internet, 0, gapsync.FileStored)
	if err != nil {
		return err
	}
	// A record the gateway would refuse (a file too large for its chunk
	// size, a reference too long) is refused here, and the others go on.
	if recs, err = f.valid(ctx, recs, gapsync.Internet); err != nil {
		return err
	}
	// Pages go pushPagesInFlight at a time, so that one page's offer and
	// records overlap another's chunks on the wire; the first failure
	// stops the rest.
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(pushPagesInFlight)
	var mu sync.Mutex
	// The pages share Transfers: chunk batches in flight stay within
	// it, and so does memory.
	transfers := semaphore.NewWeighted(int64(f.opts.Transfers))
	for len(recs) > 0 && gctx.Err() == nil {
		// A page holds at most offerPage records and, together, the
		// chunks of one offer (a record alone is never over that).
		n, chunks := 0, 0
		for n < len(recs) && n < offerPage && (n == 0 || chunks+recs[n].Chunks <= transport.MaxOfferChunks) {
			chunks += recs[n].Chunks
			n++
		}
		page := recs[:n]
		recs = recs[n:]
		eg.Go(func() error {
			var pr FileReport
			err := c.pushPage(gctx, f, ft, page, early, transfers, &pr)
			mu.Lock()
			r.Sent, r.Delivered, r.Bytes = r.Sent+pr.Sent, r.Delivered+pr.Delivered, r.Bytes+pr.Bytes
			mu.Unlock()
			return err
		})
	}
	return eg.Wait()
}

// pushPagesInFlight is how many pages of records pushFiles offers and
// sends at once. Two halve the time of many small files, whose pages
// each wait on an offer, a commit here and one there.
const pushPagesInFlight = 2

// offerPage is how many records one offer carries.
const offerPage = 200

// recordsPage is how many intranet records one records request asks
// for: as many as an answer may carry, the fewer round trips and
// acknowledgements (commits there) a pull of many files takes.
const recordsPage = transport.MaxOfferRecords

// piece names one chunk of one file.
type piece struct {
	rec *gapsync.FileRecord
	idx int
}

// pushPage offers one page of records and sends the chunks the intranet
// lacks, grouped across files into batches of up to BatchBytes, so many
// small files share a request (seed 1.3.1-1.3.3). early holds the chunks
// sent this cycle while files were staged. Each batch in flight holds one
// of transfers.
func (c *Coordinator) pushPage(ctx context.Context, f *fileFlow, ft FileTransport, recs []gapsync.FileRecord, early map[string]int, transfers *semaphore.Weighted, r *FileReport) error {
	answers, err := ft.OfferFiles(ctx, recs)
	if err != nil {
		return err
	}
	byID := map[string]*gapsync.FileRecord{}
	for i := range recs {
		byID[recs[i].ID] = &recs[i]
	}
	var errs []error
	var pieces []piece
	var delivered []gapsync.FileRecord
	sending := map[string]int{}
	for _, a := range answers {
		rec, ok := byID[a.ID]
		if !ok {
			return fmt.Errorf("%w: offer answer for unknown file %s", gapsync.ErrMalformed, a.ID)
		}
		if a.Status == gapsync.FilePublished {
			d := *rec
			d.Status, d.LocalKey = gapsync.FilePublished, ""
			delivered = append(delivered, d)
			continue
		}
		for _, i := range a.Need {
			pieces = append(pieces, piece{rec, i})
		}
		if n := len(a.Need) + early[rec.ID]; n > 0 {
			sending[rec.ID] = n
		}
	}
	if err := f.db.PutFileRecords(ctx, delivered); err != nil {
		return err
	}
	r.Delivered += len(delivered)
	var groups [][]piece
	var size, total int64
	for _, p := range pieces {
		cs := min(p.rec.ChunkSize, max(p.rec.Size-int64(p.idx)*p.rec.ChunkSize, 0))
		if len(groups) == 0 || size+cs > f.opts.BatchBytes {
			groups, size = append(groups, nil), 0
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], p)
		size += cs
		total += cs
	}
	var done atomic.Int64
	var mu sync.Mutex
	sent := map[string]int{} // chunks that reached the intranet, by file
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(min(f.opts.Transfers, max(len(groups), 1)))
	for _, g := range groups {
		eg.Go(func() error {
			if err := transfers.Acquire(gctx, 1); err != nil {
				return err
			}
			defer transfers.Release(1)
			keys := make([]gapsync.ChunkKey, len(g))
			for i, p := range g {
				keys[i] = gapsync.ChunkKey{FileID: p.rec.ID, Idx: p.idx}
			}
			cs, err := f.db.GetChunks(gctx, keys)
			if err != nil {
				return err
			}
			var n int64
			for _, ch := range cs {
				n += int64(len(ch.Data))
			}
			if err := c.opts.Throttle.WaitFiles(gctx, n); err != nil {
				return err
			}
			if _, err := ft.SendChunks(gctx, cs); err != nil {
				return err
			}
			mu.Lock()
			for _, p := range g {
				sent[p.rec.ID]++
			}
			mu.Unlock()
			d := done.Add(n)
			f.progress(gapsync.Progress{Step: "send", File: g[len(g)-1].rec.Ref, BytesDone: d, BytesTotal: max(total, d), FilesTotal: len(sending)})
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		errs = append(errs, fmt.Errorf("send chunks: %w", err))
	}
	r.Bytes += done.Load()
	// A file is sent once every chunk it needed went through, whatever
	// became of the other files' batches.
	for id, n := range sending {
		if sent[id]+early[id] == n {
			r.Sent++
			c.opts.Logger.Info("file sent", "ref", byID[id].Ref, "chunks", n)
		}
	}
	return errors.Join(errs...)
}

func (c *Coordinator) pullFiles(ctx context.Context, f *fileFlow, ft FileTransport, r *FileReport) error {
	// 1.4.2-1.4.3: records, stored here, then acknowledged, page by page.
	for {
		n, err := c.pullRecords(ctx, f, ft)
		if err != nil {
			return err
		}
		if n < recordsPage {
			break
		}
	}
	return c.pullChunks(ctx, f, ft, r)
}

// pullRecords stores one page of unacknowledged intranet records here and
// acknowledges them; it returns how many came.
func (c *Coordinator) pullRecords(ctx context.Context, f *fileFlow, ft FileTransport) (int, error) {
	recs, err := ft.FileRecords(ctx, recordsPage)
	if err != nil {
		return 0, err
	}
	if len(recs) > recordsPage {
		return 0, fmt.Errorf("%w: %d records for a page of %d", gapsync.ErrMalformed, len(recs), recordsPage)
	}
	// Every record passes the checks of an offer. One that fails is
	// acknowledged all the same, so that it does not come back and hold
	// up the others, and is not stored.
	// A record whose digest disagrees with this side's setting is not
	// acknowledged: it comes again once the settings agree.
	for _, rec := range recs {
		if err := digestAgrees(rec, f.opts.Digest, "this coordinator"); err != nil {
			return 0, err
		}
	}
	ids := make([]string, len(recs))
	good := recs[:0:0]
	for i, rec := range recs {
		ids[i] = rec.ID
		if err := checkRecord(rec, gapsync.Intranet); err != nil {
			c.opts.Logger.Warn("intranet file record refused", "id", rec.ID, "err", err)
			continue
		}
		if rec.Status != gapsync.FileStored {
			c.opts.Logger.Warn("intranet file record refused", "id", rec.ID, "status", rec.Status)
			continue
		}
		good = append(good, rec)
	}
	cur, err := f.db.FileRecordsByID(ctx, ids)
	if err != nil {
		return 0, err
	}
	var puts []gapsync.FileRecord
	for _, rec := range good {
		if c, ok := cur[rec.ID]; ok && c.Status == gapsync.FilePublished && c.SHA256 == rec.SHA256 {
			continue // already here
		}
		rec.Status, rec.Error, rec.Attempts, rec.LocalKey = gapsync.FileIncoming, "", 0, ""
		puts = append(puts, rec)
	}
	if err := f.db.PutFileRecords(ctx, puts); err != nil {
		return 0, err
	}
	if len(ids) > 0 {
		if err := ft.AckFiles(ctx, ids); err != nil {
			return 0, err
		}
	}
	return len(recs), nil
}

// PageTransport is the paged part of the file protocol: the chunks of
// many intranet files in one request, and their acknowledgement in one
// (transport.PathFileGetPage, PathFileAckPage); transport's *Client
// implements it. Every call is safe to retry. A FileTransport without it,
// or a gateway that answers an error wrapping transport.ErrNoEndpoint (a
// gateway from before the pages), is served file by file.
type PageTransport interface {
	GetPage(ctx context.Context, req transport.PageRequest) ([]gapsync.Chunk, error)
	AckPage(ctx context.Context, req transport.PageRequest) error
}

// pullPage is how many files one page of the pull fetches at most.
const pullPage = transport.MaxPageFiles

// wanted is an incoming file and the chunk indexes it lacks here.
type wanted struct {
	rec  gapsync.FileRecord
	need []int
}

// pullChunks fetches the chunks each incoming file lacks (1.4.4), each
// batch acknowledged once stored here, then publishes the files (1.4.5).
// Files whose missing chunks fit a page travel many to a request, a
// statement here and an intranet transaction (pullPages); larger ones
// file by file, in parallel batches.
func (c *Coordinator) pullChunks(ctx context.Context, f *fileFlow, ft FileTransport, r *FileReport) error {
	incoming, err := f.db.FileRecords(ctx, gapsync.Intranet, 0, gapsync.FileIncoming)
	if err != nil {
		return err
	}
	if incoming, err = f.valid(ctx, incoming, gapsync.Intranet); err != nil {
		return err
	}
	incoming = slices.DeleteFunc(incoming, f.resting)
	twins, err := f.publishedTwins(ctx, incoming)
	if err != nil {
		return err
	}
	pt, _ := ft.(PageTransport)
	acked := &ackLog{}
	var errs []error
	var fetched, copies []gapsync.FileRecord
	var paged []wanted
	var missing map[string][]int
	for i, rec := range incoming {
		if _, ok := missing[rec.ID]; !ok {
			// The chunks missing of the next records, up to the chunks
			// of one offer: what is listed stays capped.
			n, chunks := i, 0
			for n < len(incoming) && (n == i || chunks+incoming[n].Chunks <= transport.MaxOfferChunks) {
				chunks += incoming[n].Chunks
				n++
			}
			if missing, err = f.missing(ctx, incoming[i:n]...); err != nil {
				return errors.Join(append(errs, err)...)
			}
		}
		need := missing[rec.ID]
		switch {
		case twins[rec.ID]:
			copies = append(copies, rec) // the same bytes are published here already
			continue
		case len(need) == 0:
			// Every chunk is here already (a run stopped before their
			// acknowledgement, or an empty file): it is acknowledged
			// below, before it is published.
			fetched = append(fetched, rec)
			continue
		case pt != nil && f.fitsPage(rec, need):
			paged = append(paged, wanted{rec, need})
			continue
		}
		if err := c.fetchFile(ctx, f, ft, acked, rec, need, i, len(incoming), r); err != nil {
			errs = append(errs, fmt.Errorf("receive %s: %w", rec.Ref, err))
			continue
		}
		fetched = append(fetched, rec)
	}
	done, got, err := c.pullPages(ctx, f, ft, pt, acked, paged, len(incoming), r)
	r.Received += len(done)
	fetched = append(fetched, got...)
	errs = append(errs, err)
	// Every chunk of a file to publish is acknowledged first, so that
	// the intranet marks it delivered and purges its chunks: those of an
	// empty file, and those that were here before this run (one stopped
	// between storing them and their acknowledgement). A file whose
	// acknowledgement fails waits for the next run.
	var acks []wanted
	for _, rec := range fetched {
		if rest, ok := acked.rest(rec); ok {
			acks = append(acks, wanted{rec, rest})
		}
	}
	failed, err := c.ackAll(ctx, f, ft, pt, acks)
	errs = append(errs, err)
	fetched = slices.DeleteFunc(fetched, func(rec gapsync.FileRecord) bool { return failed[rec.ID] })
	publishedFetched, _, err := f.publishAll(ctx, fetched, len(incoming), true)
	r.Received += len(publishedFetched)
	errs = append(errs, err)
	published, _, err := f.publishAll(ctx, copies, len(incoming), false)
	r.Received += len(published)
	errs = append(errs, err)
	// A copy's chunks were never fetched: they are acknowledged once its
	// bytes are published here from the twin's.
	byID := map[string]gapsync.FileRecord{}
	for _, rec := range copies {
		byID[rec.ID] = rec
	}
	acks = acks[:0]
	for _, id := range published {
		acks = append(acks, wanted{byID[id], allChunks(byID[id])})
	}
	_, err = c.ackAll(ctx, f, ft, pt, acks)
	return errors.Join(append(errs, err)...)
}

func allChunks(rec gapsync.FileRecord) []int {
	all := make([]int, rec.Chunks)
	for i := range all {
		all[i] = i
	}
	return all
}

// ackLog is the chunks a run acknowledged, by file id.
type ackLog struct {
	mu   sync.Mutex
	idxs map[string][]int
}

func (l *ackLog) add(ws ...wanted) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.idxs == nil {
		l.idxs = map[string][]int{}
	}
	for _, w := range ws {
		l.idxs[w.rec.ID] = append(l.idxs[w.rec.ID], w.need...)
	}
}

// rest returns the chunks of rec not acknowledged by this run, and
// whether there is anything to acknowledge: always for a file of no
// chunks, which is acknowledged whole.
func (l *ackLog) rest(rec gapsync.FileRecord) ([]int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	done := make([]bool, rec.Chunks)
	for _, i := range l.idxs[rec.ID] {
		if i >= 0 && i < rec.Chunks {
			done[i] = true
		}
	}
	var rest []int
	for i, d := range done {
		if !d {
			rest = append(rest, i)
		}
	}
	return rest, rec.Chunks == 0 || len(rest) > 0
}

// ContentFinder is a FileDB that finds files published here by their
// content for many at once (storage's *DB can); the coordinator's pull
// asks it once for all incoming files, and SameContent file by file
// otherwise.
type ContentFinder interface {
	// PublishedContent returns, for each of shas that a record here has
	// published with a local key, one such record.
	PublishedContent(ctx context.Context, shas []string) (map[string]gapsync.FileRecord, error)
}

// publishedTwins returns the ids of those of recs whose content another
// record here has published already, to be copied instead of fetched.
func (f *fileFlow) publishedTwins(ctx context.Context, recs []gapsync.FileRecord) (map[string]bool, error) {
	out := map[string]bool{}
	if cf, ok := f.db.(ContentFinder); ok {
		shas := make([]string, len(recs))
		for i, rec := range recs {
			shas[i] = rec.SHA256
		}
		pub, err := cf.PublishedContent(ctx, slices.Compact(slices.Sorted(slices.Values(shas))))
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			tw, ok := pub[rec.SHA256]
			out[rec.ID] = ok && tw.ID != rec.ID && tw.LocalKey != ""
		}
		return out, nil
	}
	for _, rec := range recs {
		tw, ok, err := f.db.SameContent(ctx, rec.SHA256, rec.ID)
		if err != nil {
			return nil, err
		}
		out[rec.ID] = ok && tw.Status == gapsync.FilePublished && tw.LocalKey != ""
	}
	return out, nil
}

// fetchFile fetches the chunks rec lacks here in parallel batches, each
// acknowledged once stored (seed 1.4.4b-d).
func (c *Coordinator) fetchFile(ctx context.Context, f *fileFlow, ft FileTransport, acked *ackLog, rec gapsync.FileRecord, need []int, i, total int, r *FileReport) error {
	var done atomic.Int64
	defer func() { r.Bytes += done.Load() }()
	return f.parallel(ctx, f.batches(need, rec.ChunkSize), func(ctx context.Context, idxs []int) error {
		cs, err := ft.GetChunks(ctx, rec.ID, idxs)
		if err != nil {
			return err
		}
		var size int64
		asked := make(map[int]bool, len(idxs))
		for _, i := range idxs {
			asked[i] = true
		}
		for _, ch := range cs {
			if ch.FileID != rec.ID {
				return fmt.Errorf("%w: chunk of %.64q in the answer for %s", gapsync.ErrMalformed, ch.FileID, rec.ID)
			}
			if !asked[ch.Idx] || int64(len(ch.Data)) > rec.ChunkSize {
				return fmt.Errorf("%w: chunk %d of %d bytes in the answer for %s, which asked for %d chunks of %d", gapsync.ErrMalformed, ch.Idx, len(ch.Data), rec.ID, len(idxs), rec.ChunkSize)
			}
			size += int64(len(ch.Data))
		}
		if err := c.opts.Throttle.WaitFiles(ctx, size); err != nil { // paid on arrival: the size is known then
			return err
		}
		if err := f.db.PutChunks(ctx, cs); err != nil {
			return err
		}
		f.progress(gapsync.Progress{Step: "receive", File: rec.Ref, BytesDone: done.Add(size), BytesTotal: rec.Size, FilesDone: i, FilesTotal: total})
		if err := ft.AckChunks(ctx, rec.ID, idxs); err != nil {
			return err
		}
		acked.add(wanted{rec, idxs})
		return nil
	})
}

// fitsPage reports whether the chunks rec lacks travel in one page.
func (f *fileFlow) fitsPage(rec gapsync.FileRecord, need []int) bool {
	return len(need) <= transport.MaxChunksPerRequest && needBytes(rec, need) <= f.pageBytes()
}

// pageBytes is the most chunk bytes one page of the pull asks for.
func (f *fileFlow) pageBytes() int64 { return min(f.opts.BatchBytes, transport.MaxPageBytes) }

func needBytes(rec gapsync.FileRecord, idxs []int) int64 {
	var n int64
	for _, i := range idxs {
		n += chunkLen(rec, i)
	}
	return n
}

// filePages packs files into page requests of at most pullPage files,
// transport.MaxChunksPerRequest indexes and, when bytes > 0, that many
// chunk bytes. A file with more indexes than a page takes is split over
// several (only acknowledgements name so many).
func filePages(ws []wanted, bytes int64) [][]wanted {
	var out [][]wanted
	var files, idxs int
	var size int64
	for _, w := range ws {
		for first := true; first || len(w.need) > 0; first = false {
			n := min(len(w.need), transport.MaxChunksPerRequest)
			part := wanted{w.rec, w.need[:n]}
			w.need = w.need[n:]
			b := needBytes(part.rec, part.need)
			if len(out) == 0 || files == pullPage || idxs+n > transport.MaxChunksPerRequest || (bytes > 0 && size+b > bytes) {
				out, files, idxs, size = append(out, nil), 0, 0, 0
			}
			out[len(out)-1] = append(out[len(out)-1], part)
			files, idxs, size = files+1, idxs+n, size+b
		}
	}
	return out
}

func pageRequest(ws []wanted) transport.PageRequest {
	req := transport.PageRequest{Files: make([]transport.ChunksRequest, len(ws))}
	for i, w := range ws {
		req.Files[i] = transport.ChunksRequest{FileID: w.rec.ID, Idxs: w.need}
	}
	return req
}

// pullPages fetches the chunks of small files a page at a time, up to
// Transfers pages at once: one get-page request, one statement here that
// stores the page's chunks, then one ack-page request (one intranet
// transaction) for the chunks stored, and the page's files are published
// (publishPage) while the next pages cross. It returns the ids of the
// files published. A gateway without the page endpoints gets the
// per-file calls instead; it returns the files so fetched, for the
// caller to publish.
func (c *Coordinator) pullPages(ctx context.Context, f *fileFlow, ft FileTransport, pt PageTransport, acked *ackLog, ws []wanted, total int, r *FileReport) ([]string, []gapsync.FileRecord, error) {
	if len(ws) == 0 {
		return nil, nil, nil
	}
	var (
		mu        sync.Mutex
		published []string
		fetched   []gapsync.FileRecord
		errs      []error
		done      atomic.Int64
		files     atomic.Int64
	)
	// fetch runs one page; it returns transport.ErrNoEndpoint, unwrapped,
	// when the gateway has no get-page.
	fetch := func(ctx context.Context, page []wanted) error {
		req := pageRequest(page)
		cs, err := pt.GetPage(ctx, req)
		if errors.Is(err, transport.ErrNoEndpoint) {
			return transport.ErrNoEndpoint
		}
		if err != nil {
			return err
		}
		byID := make(map[string]*wanted, len(page))
		for i := range page {
			byID[page[i].rec.ID] = &page[i]
		}
		got := make(map[string][]int, len(page))
		var size int64
		for _, ch := range cs {
			w := byID[ch.FileID] // transport's client checks that each was asked for, once; another PageTransport may not
			if w == nil {
				return fmt.Errorf("%w: chunk %d of %.64q in a page that did not ask for it", gapsync.ErrMalformed, ch.Idx, ch.FileID)
			}
			if want := chunkLen(w.rec, ch.Idx); int64(len(ch.Data)) > want {
				return fmt.Errorf("%w: chunk %d of %s of %d bytes in a page, where the record has %d", gapsync.ErrMalformed, ch.Idx, w.rec.ID, len(ch.Data), want)
			}
			got[ch.FileID] = append(got[ch.FileID], ch.Idx)
			size += int64(len(ch.Data))
		}
		if err := c.opts.Throttle.WaitFiles(ctx, size); err != nil {
			return err
		}
		if err := f.db.PutChunks(ctx, cs); err != nil {
			return err
		}
		// Only now that the chunks are here, durably: acknowledge them.
		var acks []wanted
		for _, w := range page {
			if idxs := got[w.rec.ID]; len(idxs) > 0 {
				acks = append(acks, wanted{w.rec, idxs})
			}
		}
		if _, err := c.ackAll(ctx, f, ft, pt, acks); err != nil {
			return err
		}
		acked.add(acks...)
		d := done.Add(size)
		var complete []gapsync.FileRecord
		mu.Lock()
		for _, w := range page {
			if len(got[w.rec.ID]) == len(w.need) {
				complete = append(complete, w.rec)
			} else {
				errs = append(errs, fmt.Errorf("receive %s: %w: %d of its %d chunks asked for are not at the intranet", w.rec.Ref, gapsync.ErrRemote, len(w.need)-len(got[w.rec.ID]), len(w.need)))
			}
			f.progress(gapsync.Progress{Step: "receive", File: w.rec.Ref, BytesDone: d, FilesDone: int(files.Add(1)), FilesTotal: total})
		}
		mu.Unlock()
		// Published at once from the bytes in hand (a file of one chunk;
		// a larger one is read back), while the next pages are fetched.
		data := make(map[string][]byte, len(cs))
		for _, ch := range cs {
			if byID[ch.FileID].rec.Chunks == 1 {
				data[ch.FileID] = ch.Data
			}
		}
		if len(complete) == 0 {
			return nil
		}
		ids, _, err := f.publishPage(ctx, complete, total, data)
		mu.Lock()
		defer mu.Unlock()
		published = append(published, ids...)
		if err != nil {
			errs = append(errs, err)
		}
		return nil
	}
	ps := filePages(ws, f.pageBytes())
	// The first page alone tells whether the gateway has pages.
	if err := fetch(ctx, ps[0]); errors.Is(err, transport.ErrNoEndpoint) {
		c.opts.Logger.Info("the gateway has no paged file endpoints (an earlier version); fetching file by file")
		for _, w := range ws {
			if err := c.fetchFile(ctx, f, ft, acked, w.rec, w.need, int(files.Add(1)), total, r); err != nil {
				errs = append(errs, fmt.Errorf("receive %s: %w", w.rec.Ref, err))
				continue
			}
			fetched = append(fetched, w.rec)
		}
		return nil, fetched, errors.Join(errs...)
	} else if err != nil {
		errs = append(errs, fmt.Errorf("receive a page of %d files: %w", len(ps[0]), err))
	}
	eg, gctx := errgroup.WithContext(ctx)
	eg.SetLimit(f.opts.Transfers)
	for _, p := range ps[1:] {
		eg.Go(func() error {
			if err := fetch(gctx, p); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("receive a page of %d files: %w", len(p), err))
				mu.Unlock()
			}
			return nil // the other pages go on
		})
	}
	eg.Wait()
	r.Bytes += done.Load()
	return published, fetched, errors.Join(errs...)
}

// ackAll acknowledges the chunks ws name, a page at a time, or file by
// file when there are no pages (no PageTransport, or a gateway without
// them). It returns the files of the acknowledgements that failed.
func (c *Coordinator) ackAll(ctx context.Context, f *fileFlow, ft FileTransport, pt PageTransport, ws []wanted) (map[string]bool, error) {
	var errs []error
	failed := map[string]bool{}
	if pt != nil && len(ws) > 0 {
		ps := filePages(ws, 0)
		for i, p := range ps {
			err := pt.AckPage(ctx, pageRequest(p))
			if errors.Is(err, transport.ErrNoEndpoint) {
				ws = slices.Concat(ps[i:]...)
				break
			}
			if err != nil {
				errs = append(errs, err)
				for _, w := range p {
					failed[w.rec.ID] = true
				}
			}
			if i == len(ps)-1 {
				ws = nil
			}
		}
	}
	for _, w := range ws {
		var err error
		if len(w.need) == 0 { // an empty file: acknowledged whole
			err = ft.AckChunks(ctx, w.rec.ID, nil)
		}
		for _, g := range f.batches(w.need, w.rec.ChunkSize) {
			err = errors.Join(err, ft.AckChunks(ctx, w.rec.ID, g))
		}
		if err != nil {
			errs = append(errs, err)
			failed[w.rec.ID] = true
		}
	}
	return failed, errors.Join(errs...)
}
