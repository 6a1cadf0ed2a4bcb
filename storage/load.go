package storage

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gapsync/gapsync/throttle"
)

var _ throttle.Probe = (*DB)(nil)

// Load reads how busy the database server is, for a throttle.Throttler's
// busy pause: the statements running on it now (MySQL and MariaDB:
// Threads_running; PostgreSQL: active client backends; SQLite: -1, the
// engine cannot tell) and the latency of that trivial statement, from the
// question to the answer, a wait for a free connection of the pool
// included. It reads nothing of the application's tables and writes
// nothing; safe to retry.
func (db *DB) Load(ctx context.Context) (throttle.Load, error) {
	q := db.d.running()
	if !db.allows(q) {
		q = "" // a device that passes DML only: the load is latency alone
	}
	start := time.Now()
	if q == "" {
		var one int
		if err := db.sql.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
			return throttle.Load{}, fmt.Errorf("storage: read load: %w", err)
		}
		return throttle.Load{Running: -1, Latency: time.Since(start)}, nil
	}
	var name, value string
	if err := db.sql.QueryRowContext(ctx, q).Scan(&name, &value); err != nil {
		return throttle.Load{}, fmt.Errorf("storage: read load: %w", err)
	}
	took := time.Since(start)
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return throttle.Load{}, fmt.Errorf("storage: read load: %s is %q, not a count", name, value)
	}
	return throttle.Load{Running: n, Latency: took}, nil
}
