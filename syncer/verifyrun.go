package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gapsync/gapsync"
)

// VerifyRecorder is an optional extension of Recorder for verifications
// (*metrics.Metrics is one). Methods are called from the goroutine that
// verifies.
type VerifyRecorder interface {
	// TableVerified reports a table compared to its end: rows compared,
	// rows that differ, and when.
	TableVerified(table string, rows int64, differ int, at time.Time)
	// VerifyRead counts the rows a verification read on side
	// ("internet" or "intranet").
	VerifyRead(side string, rows int64)
	// VerifyPaced counts the time a verification waited to keep
	// VerifyOptions.RowsPerSecond.
	VerifyPaced(d time.Duration)
}

// verifyBetweenCycles is Run's scheduled verification (see
// CoordinatorOptions.VerifyEvery). When one is due (none has finished in
// the last VerifyEvery, or the last one of every enabled table stopped
// before its end) it verifies every enabled table under the coordinator's
// lease, for at most one Interval: it then stops at the end of a range,
// keeps its progress, and gives the lease back, so that the next cycle
// runs on time and the pause after it continues the verification. It
// returns the time it took.
//
// Why the lease, and why slices: a cycle that moves rows while they are
// compared makes them look different for a moment, so a verification
// and a cycle never run at once, in this process or in another
// coordinator that shares the lease (a standby verifies only while it
// holds it). Holding the lease for a whole verification of a large table
// would stop the sync for as long, so it is held for one Interval at a
// time and the checkpoints carry the verification across cycles.
func (c *Coordinator) verifyBetweenCycles(ctx context.Context) time.Duration {
	if c.opts.VerifyEvery <= 0 {
		return 0
	}
	start := time.Now()
	log := c.opts.Logger
	due, err := c.verifyDue(ctx)
	if err != nil {
		log.Warn("scheduled verification: cannot tell whether one is due", "err", err)
		return time.Since(start)
	}
	if !due {
		return time.Since(start)
	}
	err = c.withLease(ctx, func(ctx context.Context) error {
		var o VerifyOptions
		if c.opts.Verify != nil {
			o = *c.opts.Verify
		}
		o.Fresh, o.Until = false, start.Add(c.opts.Interval)
		vs, err := c.verify(ctx, nil, &o)
		for _, v := range vs {
			if !v.Unfinished && len(v.Diffs) > 0 {
				log.Warn("scheduled verification: rows differ; see sync_verify, or run -verify -repair", "table", v.Table,
					"rows", v.Rows, "differ", len(v.Diffs))
			}
		}
		return err
	})
	switch {
	case errors.Is(err, context.Canceled):
	case err != nil:
		log.Warn("scheduled verification stopped; the next pause continues it", "err", err)
	}
	return time.Since(start)
}

// verifyDue reports whether a scheduled verification should run now.
func (c *Coordinator) verifyDue(ctx context.Context) (bool, error) {
	vlog, ok := c.db.(VerifyLog)
	if !ok {
		return false, errors.New("the internet database keeps no verifications (not a VerifyLog)")
	}
	tables, err := c.verifyTables(ctx, nil)
	if err != nil || len(tables) == 0 {
		return false, err
	}
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Name
	}
	cps, err := vlog.UnfinishedVerify(ctx, names)
	if err != nil || cps != nil {
		return cps != nil, err
	}
	last, err := vlog.LastVerify(ctx)
	return time.Since(last) >= c.opts.VerifyEvery, err
}

// withLease runs fn while holding the coordinator's lease, renewed every
// third of LeaseTTL; fn's context ends when the lease is lost. It waits
// up to LeaseWait for a lease another holder keeps (one killed keeps it
// until its LeaseTTL runs out), then returns an error wrapping
// gapsync.ErrLeaseHeld without running fn.
func (c *Coordinator) withLease(ctx context.Context, fn func(context.Context) error) error {
	if err := c.acquire(ctx); err != nil {
		return err
	}
	ctx, release := c.keepLease(ctx)
	defer release()
	err := fn(context.WithValue(ctx, leaseKey{}, c))
	if cause := context.Cause(ctx); err != nil && cause != nil && cause != ctx.Err() {
		err = fmt.Errorf("%w (%v)", err, cause)
	}
	return err
}

// leaseKey marks a context under which this coordinator holds its lease
// (withLease), so that Verify and Repair called there do not take it
// again, nor give it back when they end.
type leaseKey struct{}

// underLease runs fn holding the coordinator's lease, as a cycle does,
// unless ctx already runs under it: a manual verification or repair never
// runs at once with a cycle of this coordinator or of another one that
// shares the lease. When another live holder has the lease it returns an
// error wrapping gapsync.ErrLeaseHeld that says so, without running fn.
func (c *Coordinator) underLease(ctx context.Context, what string, fn func(context.Context) error) error {
	if held, _ := ctx.Value(leaseKey{}).(*Coordinator); held == c {
		return fn(ctx)
	}
	err := c.withLease(ctx, fn)
	if errors.Is(err, gapsync.ErrLeaseHeld) {
		return fmt.Errorf("syncer: %s: another coordinator is running (stop it, or wait for its lease to run out, at most %s after it died; "+
			"CoordinatorOptions.LeaseWait, -lease-wait in the internet main, waits that long): %w", what, c.opts.LeaseTTL, err)
	}
	return err
}
