package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gapsync/gapsync"
)

// The replay guard and the applied-batch ledger forget by one watermark,
// kept in sync_meta so that every process sharing the database, and every
// restart, sees the same one:
//
//   - Remember stores a message id with the envelope's own sealed time.
//     An envelope sealed before the watermark is refused as stale, whether
//     or not its id is still stored, so a gateway whose clock steps back
//     cannot take a replayed envelope whose id was purged.
//   - Apply refuses a batch made before the watermark (its id carries the
//     time, gapsync.BatchTime) as stale, so a batch whose ledger entry was
//     purged is never applied a second time.
//   - The watermark rises to the newest time accepted minus ReplayHorizon
//     (a batch's time no later than this host's clock), never falls, and
//     is raised before anything below it is deleted.
//
// A legitimate envelope is within MaxSkew of the gateway's clock, so with
// ReplayHorizon >= 2*MaxSkew (syncer.NewGateway checks it) the watermark
// never passes one; a batch the coordinator still retries after
// ReplayHorizon is refused, the run fails, and the next run reads the
// window again under new batch ids.

const watermarkName = "replay_watermark"

// purgeEvery is how often, at most, a process purges: by this host's
// monotonic clock, or by the accepted times advancing that much.
const purgeEvery = time.Minute

type replayState struct {
	mu        sync.Mutex
	newest    time.Time // newest time accepted by this process
	lastTick  time.Time // this host's clock at the last purge (monotonic)
	lastAt    time.Time // newest at the last purge
	purgeOnce bool      // a purge ran in this process
}

// ReplayHorizon returns how long accepted message ids and applied batch
// ids are remembered (Options.ReplayHorizon), so that a gateway can check
// it against its envelope skew.
func (db *DB) ReplayHorizon() time.Duration { return db.opts.ReplayHorizon }

// Remember records that the message id, sealed at the envelope's own time
// at, was accepted. It returns an error wrapping gapsync.ErrReplayed when
// the id was seen before, including by an earlier process (the ids live
// in sync_message, in this database), and one wrapping gapsync.ErrStale
// when at is before the replay watermark. It uses a plain INSERT that does
// nothing on a duplicate key, which isolation gateways let through.
func (db *DB) Remember(ctx context.Context, messageID string, at time.Time) error {
	q := "INSERT INTO sync_message (message_id, seen_at) VALUES (?, ?) " + db.onDuplicateNothing("message_id")
	res, err := db.sql.ExecContext(ctx, q, messageID, at.UTC().Format(timeLayout))
	if err != nil {
		return fmt.Errorf("storage: remember message: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("storage: remember message: %w", err)
	} else if n == 0 {
		return fmt.Errorf("%w: message %s", gapsync.ErrReplayed, messageID)
	}
	// Read after the insert: a purge raises the watermark before it
	// deletes, so an id that was purged and inserted again is caught here.
	w, err := db.Watermark(ctx)
	if err != nil {
		return err
	}
	if at.Before(w) {
		// Below the watermark the id means nothing: take it out again so
		// that the table holds only what the watermark does not cover.
		db.sql.ExecContext(ctx, "DELETE FROM sync_message WHERE message_id = ?", messageID)
		return fmt.Errorf("%w: message %s was sealed at %s, before the replay watermark %s, so its id may have been forgotten",
			gapsync.ErrStale, messageID, at.UTC().Format(timeLayout), w.Format(timeLayout))
	}
	db.purgeIfDue(ctx, at)
	return nil
}

// checkBatchAge refuses, after the ledger was found not to hold the
// batch, a batch made before the replay watermark: its entry may have been
// purged, so applying it could apply it twice. A marked id that does not
// parse is malformed. Ids without the marker pass.
func (db *DB) checkBatchAge(ctx context.Context, id string) error {
	made, ok, err := gapsync.BatchTime(id)
	if err != nil || !ok {
		return err
	}
	w, err := db.Watermark(ctx)
	if err != nil {
		return err
	}
	if made.Before(w) {
		return fmt.Errorf("%w: batch %s was made at %s, before the replay watermark %s; it may have been applied and forgotten, so it is not applied: read the window again",
			gapsync.ErrStale, id, made.Format(timeLayout), w.Format(timeLayout))
	}
	// A batch's time comes from the sender's clock: never let it carry
	// the watermark past this host's.
	if now := time.Now(); made.After(now) {
		made = now
	}
	db.purgeIfDue(ctx, made)
	return nil
}

// Watermark returns the replay watermark: envelopes sealed and marked
// batches made before it are refused as stale. The zero time means none.
func (db *DB) Watermark(ctx context.Context) (time.Time, error) {
	var v int64
	err := db.sql.QueryRowContext(ctx, "SELECT value FROM sync_meta WHERE name = ?", watermarkName).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("storage: read replay watermark: %w", err)
	}
	if v <= 0 {
		return time.Time{}, nil
	}
	return time.Unix(0, v).UTC(), nil
}

// purgeIfDue notes the accepted time and purges when a minute has passed
// on this host's clock or in the accepted times. A failure is logged, not
// returned: it only costs space, and the next purge tries again.
func (db *DB) purgeIfDue(ctx context.Context, at time.Time) {
	s := &db.replay
	s.mu.Lock()
	if at.After(s.newest) {
		s.newest = at
	}
	due := !s.purgeOnce || time.Since(s.lastTick) > purgeEvery || s.newest.Sub(s.lastAt) > purgeEvery
	newest := s.newest
	if due {
		s.purgeOnce, s.lastTick, s.lastAt = true, time.Now(), newest
	}
	s.mu.Unlock()
	if !due {
		return
	}
	if err := db.purge(ctx, newest.Add(-db.opts.ReplayHorizon)); err != nil {
		db.opts.Logger.Warn("purge replay state", "err", err)
	}
}

// Purge raises the replay watermark to the newest time this process has
// accepted minus ReplayHorizon, then drops the message ids and the
// applied-batch entries below the watermark. It runs by itself about once
// a minute while requests arrive; call it to purge now.
func (db *DB) Purge(ctx context.Context) error {
	db.replay.mu.Lock()
	newest := db.replay.newest
	db.replay.mu.Unlock()
	if newest.IsZero() {
		return db.purge(ctx, time.Time{})
	}
	return db.purge(ctx, newest.Add(-db.opts.ReplayHorizon))
}

func (db *DB) purge(ctx context.Context, to time.Time) error {
	if !to.IsZero() {
		if err := db.raiseWatermark(ctx, to); err != nil {
			return err
		}
	}
	// Delete below the stored watermark, which another process may have
	// raised further, and never below what this one just wrote.
	w, err := db.Watermark(ctx)
	if err != nil || w.IsZero() {
		return err
	}
	if _, err := db.sql.ExecContext(ctx, "DELETE FROM sync_message WHERE seen_at < ?", w.Format(timeLayout)); err != nil {
		return fmt.Errorf("storage: purge sync_message: %w", err)
	}
	// Marked ids sort by their time: everything from the bare marker up
	// to the watermark's key was made before the watermark.
	if _, err := db.sql.ExecContext(ctx, "DELETE FROM sync_applied WHERE batch_id >= ? AND batch_id < ?",
		gapsync.BatchIDMarker, gapsync.BatchIDTimeKey(w)); err != nil {
		return fmt.Errorf("storage: purge sync_applied: %w", err)
	}
	return nil
}

// raiseWatermark sets the watermark to w unless it is already higher, in
// one conditional UPDATE, so that it never falls, also when several
// processes race.
func (db *DB) raiseWatermark(ctx context.Context, w time.Time) error {
	v := w.UnixNano()
	up := "UPDATE sync_meta SET value = ? WHERE name = ? AND value < ?"
	res, err := db.sql.ExecContext(ctx, up, v, watermarkName, v)
	if err != nil {
		return fmt.Errorf("storage: raise replay watermark: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	// No row yet (or already higher): create it at zero, then raise.
	ins := "INSERT INTO sync_meta (name, value) VALUES (?, 0) " + db.onDuplicateNothing("name")
	if _, err := db.sql.ExecContext(ctx, ins, watermarkName); err != nil {
		return fmt.Errorf("storage: create replay watermark: %w", err)
	}
	if _, err := db.sql.ExecContext(ctx, up, v, watermarkName, v); err != nil {
		return fmt.Errorf("storage: raise replay watermark: %w", err)
	}
	return nil
}

// onDuplicateNothing ends an INSERT so that a duplicate key inserts
// nothing and is no error.
func (db *DB) onDuplicateNothing(key string) string { return db.d.onConflict([]string{key}, nil) }
