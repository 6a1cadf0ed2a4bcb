package syncer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/throttle"
)

// WorkerOptions tune an IntranetWorker.
type WorkerOptions struct {
	// Files configures the file flow; Files.Store (the intranet object
	// store, the "unstructured platform") is required.
	Files FileOptions
	// Interval between runs in Run. Default 30 seconds.
	Interval time.Duration
	// Metrics, when set, counts runs and files staged, published and
	// failed.
	Metrics Recorder
	// Throttle, when set, paces the chunk bytes the worker stages into the
	// intranet database to its file bandwidth, and pauses staging while
	// a database it probes is busy. Nil: no limits.
	Throttle *throttle.Throttler
	// Logger; default discards.
	Logger *slog.Logger
}

// IntranetWorker is the intranet zone's scheduled task. It never talks to
// the other zones: it reads the intranet database and the intranet store.
// Each run it reads the bytes of intranet files that rows sent out
// reference into the database as chunks (seed 1.2.5, 1.4.1), and publishes
// files that arrived from the internet: merge, verify MD5 and SHA-256,
// upload, record the mapping, rewrite references (seed 1.3.4).
type IntranetWorker struct {
	f    *fileFlow
	opts WorkerOptions
}

// NewIntranetWorker returns a worker over the intranet database db (a
// storage.DB).
func NewIntranetWorker(db FileDB, o *WorkerOptions) (*IntranetWorker, error) {
	w := &IntranetWorker{}
	if o != nil {
		w.opts = *o
	}
	if w.opts.Files.Store == nil {
		return nil, errors.New("syncer: NewIntranetWorker needs WorkerOptions.Files.Store")
	}
	if w.opts.Interval <= 0 {
		w.opts.Interval = 30 * time.Second
	}
	if w.opts.Logger == nil {
		w.opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w.opts.Metrics = orNoRecorder(w.opts.Metrics)
	f, err := newFileFlow(db, &w.opts.Files, gapsync.Intranet, w.opts.Logger)
	if err != nil {
		return nil, err
	}
	w.f = f
	f.stagePace = w.opts.Throttle
	return w, nil
}

// WorkerReport sums up one run.
type WorkerReport struct {
	Staged    int // intranet files read into the database
	Published int // internet files verified and written to the intranet store
	Waiting   int // internet files still missing chunks
	Failed    int // internet files whose publish failed this run (retried next run)
	// Refused are the references refused by design (see IsRefusal):
	// logged and counted, never retried, and not in RunOnce's error.
	Refused []error
}

// RunOnce runs the worker's steps once. Failures of single files are
// recorded on their records and retried next run; the error joins them.
func (w *IntranetWorker) RunOnce(ctx context.Context) (r WorkerReport, err error) {
	start := time.Now()
	defer func() { recordRun(w.opts.Metrics, r, time.Since(start), err) }()
	r, err = w.runOnce(ctx)
	r.Refused, err = splitRefusals(err)
	return r, err
}

func (w *IntranetWorker) runOnce(ctx context.Context) (WorkerReport, error) {
	var r WorkerReport
	n, err := w.f.stage(ctx, nil)
	r.Staged = n
	errs := []error{err}
	incoming, err := w.f.db.FileRecords(ctx, gapsync.Internet, 0, gapsync.FileIncoming)
	if err != nil {
		return r, errors.Join(append(errs, err)...)
	}
	incoming, err = w.f.valid(ctx, incoming, gapsync.Internet)
	if err != nil {
		return r, errors.Join(append(errs, err)...)
	}
	incoming = slices.DeleteFunc(incoming, w.f.resting)
	complete, err := w.f.complete(ctx, incoming)
	if err != nil {
		return r, errors.Join(append(errs, err)...)
	}
	// Files whose chunks are all here first; then those that wait for
	// the same content, which the first pass may have published.
	var ready, rest []gapsync.FileRecord
	for _, rec := range incoming {
		if complete[rec.ID] {
			ready = append(ready, rec)
		} else {
			rest = append(rest, rec)
		}
	}
	published, failed, err := w.f.publishAll(ctx, ready, len(incoming), true)
	r.Published, r.Failed = len(published), failed
	errs = append(errs, err)
	ready = ready[:0]
	for _, rec := range rest {
		twin, ok, err := w.f.db.SameContent(ctx, rec.SHA256, rec.ID)
		if err != nil {
			return r, errors.Join(append(errs, err)...)
		}
		if !ok || twin.Status != gapsync.FilePublished {
			r.Waiting++
			continue
		}
		ready = append(ready, rec)
	}
	published, failed, err = w.f.publishAll(ctx, ready, len(incoming), false)
	r.Published += len(published)
	r.Failed += failed
	errs = append(errs, err)
	w.f.purge(ctx)
	return r, errors.Join(errs...)
}

// Run runs the worker every Interval until ctx is done.
func (w *IntranetWorker) Run(ctx context.Context) error {
	for {
		r, err := w.RunOnce(ctx)
		if err != nil {
			w.opts.Logger.Warn("intranet worker run failed", "err", err)
		} else if r.Staged+r.Published > 0 {
			w.opts.Logger.Info("intranet worker run", "staged", r.Staged, "published", r.Published, "waiting", r.Waiting)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(w.opts.Interval):
		}
	}
}

// valid returns the records of recs that pass checkRecord for origin, in
// order. The others, which a broken or hostile peer (or a hand-edited
// database) wrote, are marked refused with the reason, so that they are
// neither listed, merged nor read again.
func (f *fileFlow) valid(ctx context.Context, recs []gapsync.FileRecord, origin gapsync.Side) ([]gapsync.FileRecord, error) {
	var bad []gapsync.FileRecord
	out := recs[:0:0]
	for _, rec := range recs {
		if err := checkRecord(rec, origin); err != nil {
			f.log.Warn("file record refused", "id", rec.ID, "err", err)
			rec.Status, rec.Error = gapsync.FileRefused, err.Error()
			bad = append(bad, rec)
			continue
		}
		out = append(out, rec)
	}
	if err := f.db.PutFileRecords(ctx, bad); err != nil {
		return nil, err
	}
	return out, nil
}

// complete reports, by id, whether every chunk of each of recs is here.
// It counts the chunks held instead of listing those missing, so that
// what it allocates follows the chunks stored, not the chunks claimed.
func (f *fileFlow) complete(ctx context.Context, recs []gapsync.FileRecord) (map[string]bool, error) {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	held, err := f.db.HeldChunks(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(recs))
	for _, rec := range recs {
		n := 0
		for _, i := range held[rec.ID] {
			if i >= 0 && i < rec.Chunks {
				n++
			}
		}
		out[rec.ID] = n >= rec.Chunks
	}
	return out, nil
}
