package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gapsync/gapsync"
)

// Parker keeps the parked tables of the internet side: tables the
// coordinator stopped syncing in one direction because their rows were
// refused for good. storage's *DB is one; a coordinator over a database
// that is not parks nothing (a refused table then fails every cycle).
type Parker interface {
	// Park records table as parked in d with reason. Parking a parked
	// table again keeps the first reason.
	Park(ctx context.Context, table string, d gapsync.Direction, reason string) error
	// Parked lists the parked tables.
	Parked(ctx context.Context) ([]gapsync.Parked, error)
	// Resume un-parks table in every direction and reports how many
	// directions were parked.
	Resume(ctx context.Context, table string) (int, error)
}

// TableRecorder is an optional extension of Recorder with per-table
// health: when each table last synced successfully in each direction,
// and which are parked. *metrics.Metrics is one.
type TableRecorder interface {
	TableSynced(table, direction string)
	TableParked(table, direction string, parked bool)
}

// permanent reports whether a table's run failed in a way no retry can
// cure: the far (or this) database refused the rows themselves. Such a
// table is parked, as is one whose sides no longer fit (ErrSchemaDrift: a
// column dropped on one side, a type changed). A column missing on the
// receiving side is not parked: the shared columns go on (drift.go).
func permanent(err error) bool {
	return errors.Is(err, gapsync.ErrRejected) || errors.Is(err, gapsync.ErrSchemaDrift)
}

// Parked lists the tables parked on the internet side, each with the
// direction and the reason. It returns nil when the internet database
// keeps no parking.
func (c *Coordinator) Parked(ctx context.Context) ([]gapsync.Parked, error) {
	p, ok := c.db.(Parker)
	if !ok {
		return nil, nil
	}
	return p.Parked(ctx)
}

// Resume un-parks table, after an operator fixed what made its rows
// refused; the next cycle syncs it again from where its last successful
// run ended, so nothing is skipped. It returns an error wrapping
// gapsync.ErrUnknownTable when the table was not parked.
func (c *Coordinator) Resume(ctx context.Context, table string) error {
	p, ok := c.db.(Parker)
	if !ok {
		return errors.New("syncer: the internet database keeps no parked tables")
	}
	n, err := p.Resume(ctx, table)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %q is not parked", gapsync.ErrUnknownTable, table)
	}
	c.opts.Logger.Info("table resumed", "table", table)
	return nil
}

const parkTimeout = 30 * time.Second

// parkedSet reads the parked tables as a set of "direction table".
func (c *Coordinator) parkedSet(ctx context.Context) (map[string]gapsync.Parked, error) {
	ps, err := c.Parked(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]gapsync.Parked, len(ps))
	for _, p := range ps {
		m[string(p.Direction)+" "+p.Table] = p
	}
	return m, nil
}

// synced records a table's run that was logged as successful.
func (c *Coordinator) synced(e gapsync.LogEntry) {
	if tr, ok := c.opts.Metrics.(TableRecorder); ok && e.Err == nil {
		tr.TableSynced(e.Table, string(e.Direction))
		tr.TableParked(e.Table, string(e.Direction), false)
	}
}

// settleRun looks at a finished run before it is logged: a permanent
// failure parks the table in that direction, with the reason, and a
// refusal of an unconfigured table says what to do.
func (c *Coordinator) settleRun(ctx context.Context, e gapsync.LogEntry) gapsync.LogEntry {
	tr, _ := c.opts.Metrics.(TableRecorder)
	switch {
	case e.Err == nil:
	case permanent(e.Err):
		p, ok := c.db.(Parker)
		if !ok {
			break
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), parkTimeout)
		defer cancel()
		if err := p.Park(pctx, e.Table, e.Direction, e.Err.Error()); err != nil {
			e.Err = errors.Join(e.Err, fmt.Errorf("park: %w", err))
			break
		}
		e.Err = fmt.Errorf("parked until resumed (fix the cause, then resume %s): %w", e.Table, e.Err)
		c.opts.Logger.Error("table parked", "table", e.Table, "dir", e.Direction, "err", e.Err)
		if tr != nil {
			tr.TableParked(e.Table, string(e.Direction), true)
		}
	case errors.Is(e.Err, gapsync.ErrUnknownTable):
		e.Err = fmt.Errorf("enabled here, but missing or not enabled for %s on one side (sync_config and table shapes are read afresh before a refusal, so it is current); retried next cycle, Check names the side and the fix: %w", e.Direction, e.Err)
	}
	return e
}
