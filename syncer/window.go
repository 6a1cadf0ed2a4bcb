package syncer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// Checkpointer keeps the positions of windows in progress on the internet
// side (gapsync.Checkpoint), so that a run cut in the middle of a long
// window (a first load of many rows) goes on at the next run from the
// page after the last one applied. storage's *DB is one; over a database
// that is not, a cut window starts again from its first page.
type Checkpointer interface {
	// Checkpoint returns the checkpoint of table in d, and false when
	// there is none. A stored checkpoint that is not valid comes back with
	// an error wrapping gapsync.ErrMalformed (the coordinator drops it and
	// starts the window over).
	Checkpoint(ctx context.Context, table string, d gapsync.Direction) (gapsync.Checkpoint, bool, error)
	// SaveCheckpoint replaces the checkpoint of cp's table and direction.
	// It must be durable when it returns: the next run trusts it.
	SaveCheckpoint(ctx context.Context, cp gapsync.Checkpoint) error
	// DropCheckpoint deletes the checkpoint of table in d, if any.
	DropCheckpoint(ctx context.Context, table string, d gapsync.Direction) error
}

// PageReader is implemented by a ChangeSource that reads one page at a
// time from a position (storage's *DB does): the push then checkpoints
// its windows as the pull does. Its contract is IsolationReader.ReadPage.
type PageReader interface {
	ReadPage(ctx context.Context, t gapsync.Table, w gapsync.Window, after []byte, p gapsync.Page) (*batch.Batch, []byte, bool, error)
}

// Remainder is implemented by a database (storage's *DB is one) or a
// Transport that estimates how many rows of a window follow a position:
// the rows left of a window in progress, which -status shows. Retrying is
// safe; it reads only.
type Remainder interface {
	Remaining(ctx context.Context, t gapsync.Table, w gapsync.Window, after []byte) (int64, error)
}

// scanFunc reads the pages of a window from the position after (nil: the
// first page) and calls fn with each page, the position after it and
// whether more may follow. An error from fn stops the scan.
type scanFunc func(ctx context.Context, after []byte, fn func(b *batch.Batch, next []byte, more bool) error) error

// pages makes a scanFunc of a reader of one page at a time.
func pages(read func(ctx context.Context, after []byte) (*batch.Batch, []byte, bool, error)) scanFunc {
	return func(ctx context.Context, after []byte, fn func(*batch.Batch, []byte, bool) error) error {
		for {
			b, next, more, err := read(ctx, after)
			if err != nil {
				return err
			}
			if err := fn(b, next, more); err != nil {
				return err
			}
			if !more {
				return nil
			}
			after = next
		}
	}
}

// applyFunc applies one page on the far side and returns its result
// (Missing in this side's names) and the batch as the far side saw it,
// against which its conflicts are settled.
type applyFunc func(ctx context.Context, b *batch.Batch) (gapsync.Result, *batch.Batch, error)

// errStalePosition says the reader refused a checkpoint's position.
var errStalePosition = errors.New("the checkpoint's position was refused")

// syncWindow is one table's run in one direction, after its last good
// bound from and the reverse direction's since: it takes up the window's
// checkpoint, or a new window up to bound(), and reads and applies its
// pages. A checkpoint whose position the reader refuses (the far side's
// table changed shape or configuration) is dropped with a log line and
// the window starts over in the same run.
func (c *Coordinator) syncWindow(ctx context.Context, runID string, t gapsync.Table, e *gapsync.LogEntry, from, since string,
	bound func() (string, error), scan func(w gapsync.Window) scanFunc, apply applyFunc) (*progress, error) {
	w, cp, err := c.startWindow(ctx, t, e.Direction, from, bound)
	if err != nil {
		return nil, err
	}
	e.Window = w
	pr, err := c.runWindow(ctx, runID, t, e, since, cp, scan(w), apply)
	if !errors.Is(err, errStalePosition) {
		return pr, err
	}
	c.opts.Logger.Warn("checkpoint dropped; the window starts from its first page", "table", t.Name, "dir", e.Direction, "why", err)
	if err := c.db.(Checkpointer).DropCheckpoint(ctx, t.Name, e.Direction); err != nil {
		return nil, err
	}
	to, err := bound()
	if err != nil {
		return nil, err
	}
	e.Window = window(from, to)
	return c.runWindow(ctx, runID, t, e, since, nil, scan(e.Window), apply)
}

// startWindow returns the window of t's run in d and the checkpoint it
// goes on from, nil to read it from its first page. from is the bound of
// the last good run; bound takes the upper bound of a new window. A
// checkpoint goes on only while it still fits: the same configuration
// (gapsync.Table.ScanKey) and the same last good bound; otherwise it is
// dropped with a log line and the window starts over, which idempotent
// apply makes harmless.
func (c *Coordinator) startWindow(ctx context.Context, t gapsync.Table, d gapsync.Direction, from string, bound func() (string, error)) (gapsync.Window, *gapsync.Checkpoint, error) {
	if cpr, ok := c.db.(Checkpointer); ok {
		cp, found, err := cpr.Checkpoint(ctx, t.Name, d)
		if err != nil && !errors.Is(err, gapsync.ErrMalformed) {
			return gapsync.Window{}, nil, err
		}
		why := ""
		switch {
		case err != nil:
			why = err.Error()
		case !found:
		case cp.Config != t.ScanKey():
			why = "the table's configuration changed since the window began"
		case window(from, cp.Window.To) != cp.Window:
			why = "the table's last good window moved since the window began (a reload, or a run that ended it)"
		default:
			c.opts.Logger.Info("window goes on from its checkpoint", "table", t.Name, "dir", d, "window_from", cp.Window.From,
				"window_to", cp.Window.To, "rows_done", cp.Rows, "batches_done", cp.Batches, "began", cp.StartedAt)
			return cp.Window, &cp, nil
		}
		if why != "" {
			c.opts.Logger.Warn("checkpoint dropped; the window starts from its first page", "table", t.Name, "dir", d, "why", why)
			if err := cpr.DropCheckpoint(ctx, t.Name, d); err != nil {
				return gapsync.Window{}, nil, err
			}
		}
	}
	to, err := bound()
	if err != nil {
		return gapsync.Window{}, nil, err
	}
	return window(from, to), nil, nil
}

// runWindow reads the pages of e.Window with scan, from the position of
// cp (nil: the first page), and applies them with apply, up to InFlight
// at a time: the next page is read while earlier ones are applied. After
// each page whose apply (and the settling of its conflicts) returned, the
// window's checkpoint advances through the pages applied in order, when
// the internet database keeps checkpoints and the window goes on past
// that page. A position the reader refuses before the first page of a
// checkpoint comes back as errStalePosition.
func (c *Coordinator) runWindow(ctx context.Context, runID string, t gapsync.Table, e *gapsync.LogEntry, since string, cp *gapsync.Checkpoint, scan scanFunc, apply applyFunc) (*progress, error) {
	// Batch ids: unique per table run, stable across retries of a
	// batch, and carrying the time, so that the writer can forget them.
	prefix := gapsync.NewBatchPrefix(time.Now())
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opts.InFlight)
	var mu sync.Mutex
	pr := c.newProgress(runID, t, e, cp)
	var after []byte
	if cp != nil {
		after = cp.After
	}
	seq := 0
	err := scan(gctx, after, func(b *batch.Batch, next []byte, more bool) error {
		defer func() { seq++ }()
		if b.Table != t.Name {
			return fmt.Errorf("%w: asked for %s, got a page of %q", gapsync.ErrMalformed, t.Name, b.Table)
		}
		slot, err := pr.add(gctx, next, more)
		if err != nil {
			return err
		}
		if len(b.Rows) == 0 {
			return pr.done(gctx, slot, b)
		}
		if err := c.checkColumns(gctx, t, e.Direction, b.Columns); err != nil { // schema drift (drift.go)
			return err
		}
		if err := c.opts.Throttle.Wait(gctx, t.Name, len(b.Rows), b.Bytes()); err != nil {
			return err
		}
		b.ID, b.Seq = prefix+"-"+strconv.Itoa(seq), uint64(seq)
		b.Direction, b.Since, b.Flags = string(e.Direction), since, 0
		if firstLoad(e.Window) {
			b.Flags = batch.FlagLoad
		}
		sent := b.Columns // as sent: the apply here takes out what this side lacks
		g.Go(func() error {
			res, sb, err := apply(gctx, b)
			if err != nil {
				return err
			}
			if err := c.noteMissing(gctx, t, e.Direction, sent, res.Missing); err != nil {
				return err
			}
			mu.Lock()
			account(e, b, res)
			mu.Unlock()
			if err := c.settle(gctx, runID, t, e.Direction, sb, res.Conflicts, e, &mu); err != nil {
				return err
			}
			return pr.done(gctx, slot, b)
		})
		return gctx.Err()
	})
	if err != nil && seq == 0 && cp != nil && errors.Is(err, gapsync.ErrMalformed) {
		err = fmt.Errorf("%w: %w", errStalePosition, err)
	}
	return pr, errors.Join(err, g.Wait())
}

// progress orders the pages of one window as they were read, and moves
// its checkpoint through those applied without a gap.
type progress struct {
	c     *Coordinator
	db    Checkpointer // nil: no checkpoints
	est   Remainder    // nil: rows left not known
	t     gapsync.Table
	mu    sync.Mutex
	cp    gapsync.Checkpoint
	saved bool // a checkpoint of this window is stored
	// pages read and not yet passed by the checkpoint, in read order;
	// pages[0] is page number base.
	pages []page
	base  int
	slots chan struct{} // one per page in pages: at most InFlight
	// left and leftAt: the rows counted after the position when this
	// run first checkpointed, and cp.Rows then.
	left, leftAt int64
	counted      bool
}

type page struct {
	next       []byte
	more, done bool
	rows       int64
}

func (c *Coordinator) newProgress(runID string, t gapsync.Table, e *gapsync.LogEntry, cp *gapsync.Checkpoint) *progress {
	p := &progress{c: c, t: t, left: -1, slots: make(chan struct{}, c.opts.InFlight)}
	p.db, _ = c.db.(Checkpointer)
	if e.Direction == gapsync.Push {
		p.est, _ = c.db.(Remainder)
	} else if r, ok := c.tr.(Remainder); ok {
		p.est = wireRemainder{r} // the gateway counts under the intranet's name
	}
	if cp != nil {
		p.cp, p.saved = *cp, true
	} else {
		p.cp = gapsync.Checkpoint{Table: t.Name, Direction: e.Direction, Window: e.Window, Config: t.ScanKey(), Left: -1,
			RunID: runID, StartedAt: time.Now()}
	}
	return p
}

// add registers the next page read and returns its number. It waits
// while InFlight pages are past the checkpoint: so a run cut anywhere
// leaves at most InFlight pages applied beyond its checkpoint, which the
// next run reads again.
func (p *progress) add(ctx context.Context, next []byte, more bool) (int, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pages = append(p.pages, page{next: next, more: more})
	return p.base + len(p.pages) - 1, nil
}

// done marks page n applied and saves the checkpoint when pages up to a
// later one than before are all applied.
func (p *progress) done(ctx context.Context, n int, b *batch.Batch) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pages[n-p.base].done, p.pages[n-p.base].rows = true, int64(len(b.Rows))
	moved := false
	for len(p.pages) > 0 && p.pages[0].done {
		pg := p.pages[0]
		p.pages, p.base = p.pages[1:], p.base+1
		<-p.slots
		if pg.rows > 0 {
			p.cp.Rows += pg.rows
			p.cp.Batches++
		}
		if pg.more && len(pg.next) > 0 { // the window goes on past this page
			p.cp.After = pg.next
			moved = true
		} else {
			moved = false // the window's last page: the sync log records its end
		}
	}
	if !moved || p.db == nil {
		return nil
	}
	if !p.counted && p.est != nil {
		p.counted = true
		n, err := p.est.Remaining(ctx, p.t, p.cp.Window, p.cp.After)
		if err != nil {
			p.c.opts.Logger.Debug("rows left of the window not counted", "table", p.t.Name, "dir", p.cp.Direction, "err", err)
		} else {
			p.left, p.leftAt = n, p.cp.Rows
		}
	}
	if p.left >= 0 {
		p.cp.Left = max(p.left-(p.cp.Rows-p.leftAt), 0)
	}
	// The pages through the checkpoint were applied: it is saved even
	// when another page failed meanwhile and cancelled ctx.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := p.db.SaveCheckpoint(sctx, p.cp); err != nil {
		return err
	}
	p.saved = true
	return nil
}

// finish drops the window's checkpoint after its run was logged as good.
func (p *progress) finish(ctx context.Context) {
	if p == nil || p.db == nil || !p.saved {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := p.db.DropCheckpoint(dctx, p.t.Name, p.cp.Direction); err != nil {
		// The next run sees that the window ended and drops it then.
		p.c.opts.Logger.Warn("drop the checkpoint of a finished window", "table", p.t.Name, "dir", p.cp.Direction, "err", err)
	}
}

// wireRemainder asks for the rows left of a table under its intranet name.
type wireRemainder struct{ Remainder }

func (r wireRemainder) Remaining(ctx context.Context, t gapsync.Table, w gapsync.Window, after []byte) (int64, error) {
	wt := t
	wt.Name = t.Wire()
	return r.Remainder.Remaining(ctx, wt, w, after)
}
