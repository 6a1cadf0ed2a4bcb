package storage

import (
	"testing"

	"github.com/matryer/is"
)

// A ledger's statistics are refreshed at 500 rows and then each time it
// has more than doubled: a handful of times for a load of any size.
func TestLedgerAnalyzeSchedule(t *testing.T) {
	is := is.New(t)
	var s ledgerStats
	var due []int
	total := 0
	for i := 0; i < 1000; i++ { // 1,000 batches of 1,000 rows
		total += 1000
		if s.grew("sync_row_version", 1000) {
			due = append(due, total)
		}
	}
	is.Equal(due[0], 1000) // the first batch past 500
	is.True(len(due) <= 12)
	for i := 1; i < len(due); i++ {
		is.True(due[i] >= 2*due[i-1]) // spaced at least by doubling
	}
	is.True(!s.grew("sync_ref_origin", 499)) // counted per ledger
	is.True(s.grew("sync_ref_origin", 1))
	is.Equal(pgDialect{}.analyze("sync_row_version"), `ANALYZE "sync_row_version"`)
	is.Equal(mysqlDialect{}.analyze("sync_row_version"), "")
}
