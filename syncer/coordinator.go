package syncer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// CoordinatorOptions tune a Coordinator. Nil gives the defaults.
type CoordinatorOptions struct {
	// Page bounds each batch: rows and payload bytes. Defaults 1000 rows,
	// 4 MiB. Keep Bytes under the gateway's body cap.
	Page gapsync.Page
	// Tables is how many tables sync at once. Default 4.
	Tables int
	// Interval is the pause between cycles in Run. Default 1 minute.
	Interval time.Duration
	// Logger; default discards.
	Logger *slog.Logger
}

// Coordinator is the internet zone's role. Every exchange starts here: it
// reads changed rows from the internet database, sends them sealed to the
// gateway, and keeps the sync log.
type Coordinator struct {
	src  ChangeSource
	log  Journal
	tr   Transport
	opts CoordinatorOptions
}

// NewCoordinator returns a Coordinator reading from src, logging to j and
// delivering through t. storage's *DB serves as both src and j.
func NewCoordinator(src ChangeSource, j Journal, t Transport, o *CoordinatorOptions) (*Coordinator, error) {
	if src == nil || j == nil || t == nil {
		return nil, errors.New("syncer: NewCoordinator needs a change source, a journal and a transport")
	}
	c := &Coordinator{src: src, log: j, tr: t}
	if o != nil {
		c.opts = *o
	}
	if c.opts.Page.Rows <= 0 {
		c.opts.Page.Rows = 1000
	}
	if c.opts.Page.Bytes <= 0 {
		c.opts.Page.Bytes = 4 << 20
	}
	if c.opts.Tables <= 0 {
		c.opts.Tables = 4
	}
	if c.opts.Interval <= 0 {
		c.opts.Interval = time.Minute
	}
	if c.opts.Logger == nil {
		c.opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

// Report sums up one cycle.
type Report struct {
	RunID  string
	Tables []gapsync.LogEntry // one per table and direction, as logged
}

// Rows returns the rows sent in direction d (all directions when d is "").
func (r *Report) Rows(d gapsync.Direction) int64 {
	var n int64
	for _, t := range r.Tables {
		if d == "" || t.Direction == d {
			n += t.Rows
		}
	}
	return n
}

// Err joins the errors of the tables that failed.
func (r *Report) Err() error {
	var errs []error
	for _, t := range r.Tables {
		if t.Err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", t.Direction, t.Table, t.Err))
		}
	}
	return errors.Join(errs...)
}

// Run runs a cycle, then one every Interval, until ctx is done. A failed
// cycle is logged (and recorded in the sync log) and retried at the next
// tick; Run returns only ctx's error.
func (c *Coordinator) Run(ctx context.Context) error {
	for {
		r, err := c.RunOnce(ctx)
		if err != nil {
			c.opts.Logger.Warn("cycle failed", "run", r.RunID, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.opts.Interval):
		}
	}
}

// RunOnce runs one cycle: every table enabled for push, in parallel up to
// Options.Tables. Each table's run is recorded in the sync log whether it
// succeeds or fails; the error joins the failures.
func (c *Coordinator) RunOnce(ctx context.Context) (*Report, error) {
	r := &Report{RunID: newID()}
	tables, err := c.src.Tables(ctx, gapsync.Push)
	if err != nil {
		return r, fmt.Errorf("syncer: list tables: %w", err)
	}
	var (
		mu sync.Mutex
		g  errgroup.Group
	)
	g.SetLimit(c.opts.Tables)
	for _, t := range tables {
		g.Go(func() error {
			e := c.push(ctx, r.RunID, t)
			mu.Lock()
			r.Tables = append(r.Tables, e)
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	return r, r.Err()
}

// push is seed flow 1.1 for one table: window, rows, batches, send, log.
func (c *Coordinator) push(ctx context.Context, runID string, t gapsync.Table) gapsync.LogEntry {
	e := gapsync.LogEntry{RunID: runID, Table: t.Name, Direction: gapsync.Push, StartedAt: time.Now()}
	log := c.opts.Logger.With("run", runID, "table", t.Name, "dir", gapsync.Push)
	e.Err = func() error {
		from, _, err := c.log.LastWindow(ctx, t.Name, gapsync.Push)
		if err != nil {
			return err
		}
		to, err := c.src.Bound(ctx, t)
		if err != nil {
			return err
		}
		if from != "" && to <= from {
			to = from // the bound is held back (a long transaction): nothing to read yet
		}
		e.Window = gapsync.Window{From: from, To: to}
		prefix := newID() // batch ids: unique per table run, stable across retries of a batch
		return c.src.Changes(ctx, t, e.Window, c.opts.Page, func(b *batch.Batch) error {
			b.ID = prefix + "-" + strconv.FormatUint(b.Seq, 10)
			b.Direction = string(gapsync.Push)
			res, err := c.tr.Apply(ctx, b)
			if err != nil {
				return err
			}
			e.Batches++
			e.Rows += int64(len(b.Rows))
			e.Bytes += res.Bytes
			e.Written += res.Written
			if res.Duplicate {
				e.Duplicates++
			}
			log.Debug("batch applied", "batch", b.ID, "rows", len(b.Rows), "duplicate", res.Duplicate)
			return nil
		})
	}()
	e.FinishedAt = time.Now()
	// Record with a context that survives cancellation, so a failed or
	// interrupted run still leaves its trace in the audit log.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := c.log.Record(rctx, e); err != nil {
		e.Err = errors.Join(e.Err, fmt.Errorf("record sync log: %w", err))
	}
	if e.Err != nil {
		log.Warn("table sync failed", "window_from", e.Window.From, "window_to", e.Window.To, "rows", e.Rows, "err", e.Err)
	} else {
		log.Info("table synced", "window_from", e.Window.From, "window_to", e.Window.To,
			"rows", e.Rows, "batches", e.Batches, "bytes", e.Bytes, "took", e.FinishedAt.Sub(e.StartedAt))
	}
	return e
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
