package syncer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/gapsync/gapsync"
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
	n, err := f.stage(ctx)
	r.Staged += n
	errs = append(errs, err)
	errs = append(errs, c.pushFiles(ctx, f, ft, r))
	errs = append(errs, c.pullFiles(ctx, f, ft, r))
	f.purge(ctx)
	return errors.Join(errs...)
}

func (c *Coordinator) pushFiles(ctx context.Context, f *fileFlow, ft FileTransport, r *FileReport) error {
	recs, err := f.db.FileRecords(ctx, gapsync.Internet, 200, gapsync.FileStored)
	if err != nil || len(recs) == 0 {
		return err
	}
	answers, err := ft.OfferFiles(ctx, recs)
	if err != nil {
		return err
	}
	byID := map[string]gapsync.FileRecord{}
	for _, rec := range recs {
		byID[rec.ID] = rec
	}
	var errs []error
	for i, a := range answers {
		rec, ok := byID[a.ID]
		if !ok {
			return fmt.Errorf("%w: offer answer for unknown file %s", gapsync.ErrMalformed, a.ID)
		}
		if a.Status == gapsync.FilePublished {
			rec.Status, rec.LocalKey = gapsync.FilePublished, ""
			r.Delivered++
			errs = append(errs, f.db.PutFileRecord(ctx, rec))
			continue
		}
		if len(a.Need) == 0 {
			continue
		}
		var done atomic.Int64
		err := f.parallel(ctx, f.batches(a.Need, rec.ChunkSize), func(ctx context.Context, idxs []int) error {
			cs := make([]gapsync.Chunk, 0, len(idxs))
			var size int64
			for _, i := range idxs {
				ch, err := f.db.GetChunk(ctx, rec.ID, i)
				if err != nil {
					return err
				}
				cs = append(cs, ch)
				size += int64(len(ch.Data))
			}
			if _, err := ft.SendChunks(ctx, cs); err != nil {
				return err
			}
			f.progress(gapsync.Progress{Step: "send", File: rec.Ref, BytesDone: done.Add(size), BytesTotal: rec.Size, FilesDone: i, FilesTotal: len(answers)})
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("send %s: %w", rec.Ref, err))
			continue
		}
		r.Sent++
		r.Bytes += done.Load()
		c.opts.Logger.Info("file sent", "ref", rec.Ref, "chunks", len(a.Need), "bytes", done.Load())
	}
	return errors.Join(errs...)
}

func (c *Coordinator) pullFiles(ctx context.Context, f *fileFlow, ft FileTransport, r *FileReport) error {
	// 1.4.2-1.4.3: records, stored here, then acknowledged.
	recs, err := ft.FileRecords(ctx, 200)
	if err != nil {
		return err
	}
	var ids []string
	for _, rec := range recs {
		if rec.Origin != gapsync.Intranet {
			return fmt.Errorf("%w: intranet offered a file of origin %q", gapsync.ErrMalformed, rec.Origin)
		}
		if cur, err := f.db.FileRecord(ctx, rec.ID); err == nil && cur.Status == gapsync.FilePublished && cur.SHA256 == rec.SHA256 {
			ids = append(ids, rec.ID) // already here
			continue
		}
		rec.Status, rec.Error, rec.Attempts, rec.LocalKey = gapsync.FileIncoming, "", 0, ""
		if err := f.db.PutFileRecord(ctx, rec); err != nil {
			return err
		}
		ids = append(ids, rec.ID)
	}
	if len(ids) > 0 {
		if err := ft.AckFiles(ctx, ids); err != nil {
			return err
		}
	}
	// 1.4.4: the chunks each incoming file lacks, in parallel batches,
	// each batch acknowledged once stored; then 1.4.5: publish.
	incoming, err := f.db.FileRecords(ctx, gapsync.Intranet, 200, gapsync.FileIncoming)
	if err != nil {
		return err
	}
	var errs []error
	for i, rec := range incoming {
		if rec.Attempts >= f.opts.MaxAttempts {
			continue
		}
		need, err := f.missing(ctx, rec)
		if err != nil {
			return err
		}
		var done atomic.Int64
		if _, ok, _ := f.db.SameContent(ctx, rec.SHA256, rec.ID); ok {
			need = nil // the same bytes are here already
		}
		err = f.parallel(ctx, f.batches(need, rec.ChunkSize), func(ctx context.Context, idxs []int) error {
			cs, err := ft.GetChunks(ctx, rec.ID, idxs)
			if err != nil {
				return err
			}
			var size int64
			for _, ch := range cs {
				if ch.FileID != rec.ID {
					return fmt.Errorf("%w: chunk of %s in the answer for %s", gapsync.ErrMalformed, ch.FileID, rec.ID)
				}
				if err := f.db.PutChunk(ctx, ch); err != nil {
					return err
				}
				size += int64(len(ch.Data))
			}
			f.progress(gapsync.Progress{Step: "receive", File: rec.Ref, BytesDone: done.Add(size), BytesTotal: rec.Size, FilesDone: i, FilesTotal: len(incoming)})
			return ft.AckChunks(ctx, rec.ID, idxs)
		})
		r.Bytes += done.Load()
		if err != nil {
			errs = append(errs, fmt.Errorf("receive %s: %w", rec.Ref, err))
			continue
		}
		if err := f.publish(ctx, rec, len(incoming)); err != nil {
			errs = append(errs, fmt.Errorf("publish %s: %w", rec.Ref, err))
			continue
		}
		r.Received++
	}
	return errors.Join(errs...)
}
