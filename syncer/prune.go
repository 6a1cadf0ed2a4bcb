package syncer

import (
	"context"
	"time"
)

// LogPruner is an internet database whose sync log can be pruned (a
// storage.DB is one).
type LogPruner interface {
	// PruneLog deletes at most max sync_log entries that finished before
	// before and that a newer good (or reload) entry of the same table
	// and direction has made history, oldest first, and returns how many
	// it deleted. The newest good window of every table and direction,
	// and every entry after it, are never deleted.
	PruneLog(ctx context.Context, before time.Time, max int) (int64, error)
}

// pruneEvery is how often Run prunes the sync log; pruneChunk how many
// entries one statement deletes, and pruneBudget how long one pruning
// goes on before it leaves the rest to the next.
const (
	pruneEvery  = time.Hour
	pruneChunk  = 5000
	pruneBudget = time.Second
)

// pruneBetweenCycles deletes sync_log entries older than LogRetention
// (see CoordinatorOptions.LogRetention), at most once per pruneEvery and
// for about pruneBudget, and returns the time it took. Failures are
// logged: the log is history, and the next hour tries again.
func (c *Coordinator) pruneBetweenCycles(ctx context.Context) time.Duration {
	p, ok := c.db.(LogPruner)
	if !ok || c.opts.LogRetention < 0 || time.Since(c.pruned) < pruneEvery {
		return 0
	}
	start := time.Now()
	c.pruned = start
	before := start.Add(-c.opts.LogRetention)
	var total int64
	for time.Since(start) < pruneBudget {
		n, err := p.PruneLog(ctx, before, pruneChunk)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				c.opts.Logger.Warn("prune sync_log; the next hour tries again", "err", err)
			}
			break
		}
		if n < pruneChunk {
			break
		}
	}
	if total > 0 {
		c.opts.Logger.Info("pruned sync_log", "entries", total, "older_than", before.UTC().Format(time.RFC3339), "took", time.Since(start))
	}
	return time.Since(start)
}
