package storage

import (
	"context"
	"sync"
)

// ledgerStats keeps the planner's statistics of the ledgers current while
// they grow. PostgreSQL plans a lookup of many keys in sync_row_version or
// sync_ref_origin by table name alone, scanning every key of the table,
// until the ledger has been analyzed; autovacuum gets to a new table only
// after a while, and an initial load would slow down batch by batch. So
// after writes that took a ledger past twice the rows it had when it was
// last analyzed (from 500 on), the writer analyzes it: a few times for a
// load of any size.
type ledgerStats struct {
	mu    sync.Mutex
	rows  map[string]int64 // rows written since the last analyze, per ledger
	limit map[string]int64 // rows that trigger the next analyze
}

const firstAnalyze = 500

// grew notes n rows written to ledger and reports whether it is due.
func (s *ledgerStats) grew(ledger string, n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rows == nil {
		s.rows, s.limit = map[string]int64{}, map[string]int64{}
	}
	s.rows[ledger] += int64(n)
	lim := s.limit[ledger]
	if lim == 0 {
		lim = firstAnalyze
	}
	if s.rows[ledger] < lim {
		return false
	}
	s.limit[ledger] = 2 * (lim + s.rows[ledger])
	s.rows[ledger] = 0
	return true
}

// noteLedger records that n rows were written to ledger and, where the
// dialect has statistics to refresh, refreshes them when due. It runs
// after the writing transaction has committed; a failure only costs speed
// and is logged.
func (db *DB) noteLedger(ctx context.Context, ledger string, n int) {
	q := db.d.analyze(ledger)
	if q == "" || !db.allows(q) || n == 0 || !db.ledgers.grew(ledger, n) {
		return
	}
	if _, err := db.sql.ExecContext(ctx, q); err != nil {
		db.opts.Logger.Warn("cannot refresh the planner's statistics of a ledger", "table", ledger, "err", err)
	}
}
