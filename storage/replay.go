package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/gapsync/gapsync"
)

// Remember records that the message id was accepted. It returns an error
// wrapping gapsync.ErrReplayed when the id was seen before, including by an
// earlier process: the ids live in sync_message, in this database. It
// uses a plain INSERT that does nothing on a duplicate key, which
// isolation gateways let through.
func (db *DB) Remember(ctx context.Context, messageID string, at time.Time) error {
	q := "INSERT INTO sync_message (message_id, seen_at) VALUES (?, ?) "
	if db.d.Name() == "mysql" {
		q += "ON DUPLICATE KEY UPDATE message_id = message_id"
	} else {
		q += "ON CONFLICT (message_id) DO NOTHING"
	}
	res, err := db.sql.ExecContext(ctx, q, messageID, at.UTC().Format(timeLayout))
	if err != nil {
		return fmt.Errorf("storage: remember message: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("storage: remember message: %w", err)
	} else if n == 0 {
		return fmt.Errorf("%w: message %s", gapsync.ErrReplayed, messageID)
	}
	db.purgeMessages(ctx, at)
	return nil
}

// purgeMessages drops message ids older than the replay horizon, at most
// once a minute. A failure is logged, not returned: it only costs space.
func (db *DB) purgeMessages(ctx context.Context, now time.Time) {
	db.purgeMu.Lock()
	due := now.Sub(db.lastPurge) > time.Minute
	if due {
		db.lastPurge = now
	}
	db.purgeMu.Unlock()
	if !due {
		return
	}
	cut := now.Add(-db.opts.ReplayHorizon).UTC().Format(timeLayout)
	if _, err := db.sql.ExecContext(ctx, "DELETE FROM sync_message WHERE seen_at < ?", cut); err != nil {
		db.opts.Logger.Warn("purge sync_message", "err", err)
	}
}
