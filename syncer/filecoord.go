package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

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
	for len(recs) > 0 {
		// A page holds at most offerPage records and, together, the
		// chunks of one offer (a record alone is never over that).
		n, chunks := 0, 0
		for n < len(recs) && n < offerPage && (n == 0 || chunks+recs[n].Chunks <= transport.MaxOfferChunks) {
			chunks += recs[n].Chunks
			n++
		}
		page := recs[:n]
		recs = recs[n:]
		if err := c.pushPage(ctx, f, ft, page, early, r); err != nil {
			return err
		}
	}
	return nil
}

// offerPage is how many records one offer or records request carries.
const offerPage = 200

// piece names one chunk of one file.
type piece struct {
	rec *gapsync.FileRecord
	idx int
}

// pushPage offers one page of records and sends the chunks the intranet
// lacks, grouped across files into batches of up to BatchBytes, so many
// small files share a request (seed 1.3.1-1.3.3). early holds the chunks
// sent this cycle while files were staged.
func (c *Coordinator) pushPage(ctx context.Context, f *fileFlow, ft FileTransport, recs []gapsync.FileRecord, early map[string]int, r *FileReport) error {
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
		if n < offerPage {
			break
		}
	}
	return c.pullChunks(ctx, f, ft, r)
}

// pullRecords stores one page of unacknowledged intranet records here and
// acknowledges them; it returns how many came.
func (c *Coordinator) pullRecords(ctx context.Context, f *fileFlow, ft FileTransport) (int, error) {
	recs, err := ft.FileRecords(ctx, offerPage)
	if err != nil {
		return 0, err
	}
	if len(recs) > offerPage {
		return 0, fmt.Errorf("%w: %d records for a page of %d", gapsync.ErrMalformed, len(recs), offerPage)
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

// pullChunks fetches, for each incoming file, the chunks it lacks in
// parallel batches, each acknowledged once stored (1.4.4), then publishes
// it (1.4.5).
func (c *Coordinator) pullChunks(ctx context.Context, f *fileFlow, ft FileTransport, r *FileReport) error {
	incoming, err := f.db.FileRecords(ctx, gapsync.Intranet, 0, gapsync.FileIncoming)
	if err != nil {
		return err
	}
	if incoming, err = f.valid(ctx, incoming, gapsync.Intranet); err != nil {
		return err
	}
	incoming = slices.DeleteFunc(incoming, f.resting)
	var errs []error
	var fetched, copies []gapsync.FileRecord
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
		var done atomic.Int64
		twin, ok, err := f.db.SameContent(ctx, rec.SHA256, rec.ID)
		if err != nil {
			return err
		}
		fromTwin := ok && twin.Status == gapsync.FilePublished && twin.LocalKey != ""
		if fromTwin {
			need = nil // the same bytes are published here already
		}
		err = f.parallel(ctx, f.batches(need, rec.ChunkSize), func(ctx context.Context, idxs []int) error {
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
			f.progress(gapsync.Progress{Step: "receive", File: rec.Ref, BytesDone: done.Add(size), BytesTotal: rec.Size, FilesDone: i, FilesTotal: len(incoming)})
			return ft.AckChunks(ctx, rec.ID, idxs)
		})
		r.Bytes += done.Load()
		if err != nil {
			errs = append(errs, fmt.Errorf("receive %s: %w", rec.Ref, err))
			continue
		}
		if fromTwin {
			copies = append(copies, rec)
		} else {
			fetched = append(fetched, rec)
		}
	}
	publishedFetched, _, err := f.publishAll(ctx, fetched, len(incoming), true)
	r.Received += len(publishedFetched)
	errs = append(errs, err)
	published, _, err := f.publishAll(ctx, copies, len(incoming), false)
	r.Received += len(published)
	errs = append(errs, err)
	byID := map[string]gapsync.FileRecord{}
	for _, rec := range fetched {
		if rec.Chunks == 0 {
			byID[rec.ID] = rec // no chunk to acknowledge: acknowledge the file below
		}
	}
	for _, id := range publishedFetched {
		if rec, ok := byID[id]; ok {
			if err := ft.AckChunks(ctx, rec.ID, nil); err != nil {
				errs = append(errs, err)
			}
		}
	}
	chunks := map[string]gapsync.FileRecord{}
	for _, rec := range copies {
		chunks[rec.ID] = rec
	}
	for _, id := range published {
		rec := chunks[id]
		// Nothing was fetched; acknowledge every chunk so that the
		// intranet marks the file delivered and purges its chunks.
		all := make([]int, rec.Chunks)
		for i := range all {
			all[i] = i
		}
		for _, g := range f.batches(all, rec.ChunkSize) {
			if err := ft.AckChunks(ctx, rec.ID, g); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
