package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gapsync/gapsync"
)

// StatusReload is the status of a sync_log entry that Reload wrote: the
// table's next run in that direction starts from its first row.
const StatusReload = "reload"

// Status is what the internet side knows of its sync, for an operator:
// per table and direction the last good window and the last run, and the
// file records by status. It is read from sync_config, sync_log,
// sync_parked and file_record, and from the tables themselves for the
// rows pending.
type Status struct {
	At     time.Time     `json:"at"`
	Tables []TableStatus `json:"tables"`
	// Files counts file_record rows by origin and status.
	Files []FileCount `json:"files"`
	// Failures counts failed and refused file records by reason (the
	// root cause of the error, with quoted names left out).
	Failures []FileFailure `json:"file_failures"`
	// Verify is, per table, its newest finished verification, and one
	// under way (stopped, or between cycles) when there is one.
	Verify []VerifyStatus `json:"verifications,omitempty"`
}

// VerifyStatus is a table's verification, from sync_verify and
// sync_verify_progress.
type VerifyStatus struct {
	Table string `json:"table"`
	// At is when the newest finished verification ended (zero: none has),
	// Rows how many rows it compared and Differ how many differed.
	At     time.Time `json:"verified_at,omitzero"`
	Rows   int64     `json:"rows_compared"`
	Differ int       `json:"differ"`
	TookMS int64     `json:"took_ms"`
	// Running, when set, is the rows compared so far by a verification
	// that has not reached the table's end, last kept at RunningAt.
	Running   int64     `json:"rows_running,omitempty"`
	RunningAt time.Time `json:"running_at,omitzero"`
}

// TableStatus is one table in one direction.
type TableStatus struct {
	Table     string `json:"table"`
	Direction string `json:"direction"`
	Enabled   bool   `json:"enabled"`
	// Window is the upper bound of the newest successful run: the next
	// run reads from there. Empty when the table has not synced yet, or
	// was reloaded since.
	Window string `json:"last_good_window"`
	// GoodAt is when that run started (its bound was taken then); zero
	// when there is none. Age is At − GoodAt, in seconds; -1 when none.
	GoodAt     time.Time `json:"last_good_at,omitzero"`
	AgeSeconds float64   `json:"age_seconds"`
	// LastRun is the newest sync_log entry of any status.
	LastRun *RunStatus `json:"last_run,omitempty"`
	// LastError is the error of the newest failed run since the last
	// good one ("" when the last run was good).
	LastError string          `json:"last_error,omitempty"`
	Parked    *gapsync.Parked `json:"parked,omitempty"`
	// Missing lists the columns the receiving side lacks (schema drift):
	// the other columns sync, these wait for the ALTER TABLE shown.
	Missing []gapsync.MissingColumn `json:"missing_columns,omitempty"`
	// Pending estimates the rows changed at or after Window, counted in
	// this database (push only, up to PendingCap; -1 when not known
	// here, as for pull, whose rows are on the intranet side).
	Pending int64 `json:"rows_pending"`
	// ConflictsDay sums the conflicts of the runs that ended in the last
	// 24 hours.
	ConflictsDay int `json:"conflicts_last_day"`
	// InProgress is the window in progress, from its checkpoint: a run
	// going on now, or one cut before its window ended, which the next
	// run continues. Nil when there is none.
	InProgress *WindowProgress `json:"in_progress,omitempty"`
}

// WindowProgress is a window in progress (gapsync.Checkpoint).
type WindowProgress struct {
	From    string `json:"window_from"`
	To      string `json:"window_to"`
	Batches int    `json:"batches_done"`
	Rows    int64  `json:"rows_done"`
	// Left estimates the rows still to read: the rows counted after the
	// position when the run took it up, less those read since; -1 when
	// not known.
	Left      int64     `json:"rows_left"`
	RunID     string    `json:"run_id"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RunStatus is one sync_log entry.
type RunStatus struct {
	RunID      string    `json:"run_id"`
	Status     string    `json:"status"`
	Rows       int64     `json:"rows"`
	Written    int64     `json:"rows_written"`
	Conflicts  int       `json:"conflicts"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Error      string    `json:"error,omitempty"`
}

// FileCount is how many file records of one origin have one status.
type FileCount struct {
	Origin string `json:"origin"`
	Status string `json:"status"`
	Count  int64  `json:"count"`
	Bytes  int64  `json:"bytes"`
}

// FileFailure is how many failed or refused records share a reason.
type FileFailure struct {
	Origin  string `json:"origin"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Count   int64  `json:"count"`
	Example string `json:"example"` // one full error of the group
}

// PendingCap bounds the count of pending rows: a table far behind is
// reported as at least this many, without counting all of it.
const PendingCap = 1_000_000

// Status reads the state of every table in sync_config, in each
// direction it allows, and of the file records. It only reads.
func (db *DB) Status(ctx context.Context) (*Status, error) {
	st := &Status{At: time.Now().UTC()}
	cfg, err := db.expandedConfig(ctx) // a pattern's tables by name
	if err != nil {
		return nil, err
	}
	parked, err := db.Parked(ctx)
	if err != nil {
		return nil, err
	}
	missing, err := db.MissingColumns(ctx)
	if err != nil {
		return nil, err
	}
	var cps []CheckpointRow
	if err := db.bun.NewSelect().Model(&cps).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read sync_checkpoint: %w", err)
	}
	for _, t := range cfg {
		for _, d := range []gapsync.Direction{gapsync.Push, gapsync.Pull} {
			if t.Direction != d && t.Direction != gapsync.Both {
				continue
			}
			ts, err := db.tableStatus(ctx, st.At, t, d)
			if err != nil {
				return nil, err
			}
			for _, p := range parked {
				if p.Table == t.Name && p.Direction == d {
					ts.Parked = &p
				}
			}
			for _, m := range missing {
				if m.Table == t.Name && m.Direction == d {
					ts.Missing = append(ts.Missing, m)
				}
			}
			for _, c := range cps {
				if c.TableName == t.Name && c.Direction == string(d) {
					ts.InProgress = &WindowProgress{From: c.WindowFrom, To: c.WindowTo, Batches: c.Batches, Rows: c.Rows, Left: c.Left,
						RunID: c.RunID, StartedAt: c.StartedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
				}
			}
			st.Tables = append(st.Tables, ts)
		}
	}
	if st.Files, st.Failures, err = db.fileStatus(ctx); err != nil {
		return nil, err
	}
	if st.Verify, err = db.verifyStatus(ctx, cfg); err != nil {
		return nil, err
	}
	return st, nil
}

// verifyStatus reads the newest verification of each table of cfg that
// has one.
func (db *DB) verifyStatus(ctx context.Context, cfg []gapsync.Table) ([]VerifyStatus, error) {
	var out []VerifyStatus
	for _, t := range cfg {
		vs := VerifyStatus{Table: t.Name}
		var done []VerifyRow
		if err := db.bun.NewSelect().Model(&done).Where("table_name = ? AND kind = ?", t.Name, VerifyTable).
			OrderExpr("id DESC").Limit(1).Scan(ctx); err != nil {
			return nil, fmt.Errorf("storage: read sync_verify: %w", err)
		}
		if len(done) > 0 {
			vs.At, vs.Rows, vs.Differ, vs.TookMS = done[0].VerifiedAt.UTC(), done[0].Rows, done[0].Differ, done[0].TookMS
		}
		var running []VerifyProgressRow
		if err := db.bun.NewSelect().Model(&running).Where("table_name = ?", t.Name).
			OrderExpr("started_at DESC").Limit(1).Scan(ctx); err != nil {
			return nil, fmt.Errorf("storage: read sync_verify_progress: %w", err)
		}
		if len(running) > 0 && !running[0].Done {
			vs.Running, vs.RunningAt = running[0].Rows, running[0].UpdatedAt.UTC()
		}
		if len(done) > 0 || vs.Running > 0 {
			out = append(out, vs)
		}
	}
	return out, nil
}

func (db *DB) tableStatus(ctx context.Context, now time.Time, t gapsync.Table, d gapsync.Direction) (TableStatus, error) {
	ts := TableStatus{Table: t.Name, Direction: string(d), Enabled: t.Enabled, AgeSeconds: -1, Pending: -1}
	log := func(statuses ...string) (*LogRow, error) {
		var rows []LogRow
		q := db.bun.NewSelect().Model(&rows).Where("table_name = ?", t.Name).Where("direction = ?", string(d))
		if len(statuses) > 0 {
			q = q.Where("status IN (?)", bun.List(statuses))
		}
		if err := q.OrderExpr("id DESC").Limit(1).Scan(ctx); err != nil {
			return nil, fmt.Errorf("storage: read sync_log for %s: %w", t.Name, err)
		}
		if len(rows) == 0 {
			return nil, nil
		}
		return &rows[0], nil
	}
	last, err := log()
	if err != nil {
		return ts, err
	}
	if last == nil {
		if d == gapsync.Push {
			ts.Pending, err = db.Pending(ctx, t, "")
		}
		return ts, err
	}
	ts.LastRun = &RunStatus{RunID: last.RunID, Status: last.Status, Rows: last.Rows, Written: last.Written, Conflicts: last.Conflicts,
		StartedAt: last.StartedAt.UTC(), FinishedAt: last.FinishedAt.UTC(), Error: last.Error}
	good, err := log(StatusOK, StatusReload)
	if err != nil {
		return ts, err
	}
	if good != nil && good.Status == StatusOK {
		ts.Window, ts.GoodAt = good.WindowTo, good.StartedAt.UTC()
		ts.AgeSeconds = now.Sub(ts.GoodAt).Seconds()
	}
	if last.Status == StatusFailed {
		ts.LastError = last.Error
	}
	var sum sql.NullInt64
	err = db.bun.NewSelect().Model((*LogRow)(nil)).ColumnExpr("SUM(conflicts)").
		Where("table_name = ?", t.Name).Where("direction = ?", string(d)).Where("finished_at >= ?", now.Add(-24*time.Hour)).
		Scan(ctx, &sum)
	if err != nil {
		return ts, fmt.Errorf("storage: read sync_log conflicts for %s: %w", t.Name, err)
	}
	ts.ConflictsDay = int(sum.Int64)
	if d == gapsync.Push {
		ts.Pending, err = db.Pending(ctx, t, ts.Window)
	}
	return ts, err
}

// Pending counts the rows of t whose cursor is at or after the bound from
// (every row when from is ""), up to PendingCap: an estimate of what the
// next push reads (it leaves out deletions, and counts rows that arrived
// by sync, which are not sent back). A table that cannot be read here
// (missing, or its cursor gone) counts -1.
func (db *DB) Pending(ctx context.Context, t gapsync.Table, from string) (int64, error) {
	_, kind, err := db.shape(ctx, t)
	if errors.Is(err, gapsync.ErrUnknownTable) || errors.Is(err, gapsync.ErrUnknownColumn) {
		return -1, nil
	}
	if err != nil {
		return -1, err
	}
	inner := db.bun.NewSelect().TableExpr("?", bun.Ident(t.Name)).ColumnExpr("1").Limit(PendingCap)
	if from = (gapsync.Window{From: from}).Rows().From; from != "" {
		var arg any = from
		if kind == kindInteger {
			arg = intArg(from)
		}
		inner = inner.Where("? >= ?", bun.Ident(t.Cursor), arg)
	}
	var n int64
	if err := db.bun.NewSelect().TableExpr("(?) AS pending", inner).ColumnExpr("COUNT(*)").Scan(ctx, &n); err != nil {
		return -1, fmt.Errorf("storage: count pending rows of %s: %w", t.Name, err)
	}
	return n, nil
}

// fileStatus counts file records by origin and status, and the failed
// and refused ones by reason.
func (db *DB) fileStatus(ctx context.Context) ([]FileCount, []FileFailure, error) {
	var counts []FileCount
	err := db.bun.NewSelect().Model((*FileRecordRow)(nil)).
		ColumnExpr("origin, status, COUNT(*) AS count, COALESCE(SUM(size), 0) AS bytes").
		Group("origin", "status").Order("origin", "status").Scan(ctx, &counts)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: count file records: %w", err)
	}
	var bad []FileRecordRow
	err = db.bun.NewSelect().Model(&bad).Column("origin", "status", "error").
		Where("status IN (?)", bun.List([]string{gapsync.FileFailed, gapsync.FileRefused})).
		OrderExpr("updated_at DESC").Limit(10000).Scan(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("storage: read failed file records: %w", err)
	}
	at := map[[3]string]int{}
	var out []FileFailure
	for _, r := range bad {
		k := [3]string{r.Origin, r.Status, FailureReason(r.Error)}
		if i, ok := at[k]; ok {
			out[i].Count++
			continue
		}
		at[k] = len(out)
		out = append(out, FileFailure{Origin: k[0], Status: k[1], Reason: k[2], Count: 1, Example: r.Error})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Count > out[j].Count })
	return counts, out, nil
}

// FailureReason is the part of a file error that files failing for the
// same cause share: its last clause (the root cause), with quoted names
// replaced by "…".
func FailureReason(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return "(no error recorded)"
	}
	var b strings.Builder
	in := false
	for _, r := range msg {
		switch {
		case r == '"':
			if !in {
				b.WriteString("…")
			}
			in = !in
		case !in:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if i := strings.LastIndex(s, ": "); i >= 0 && strings.TrimSpace(s[i+2:]) != "" {
		s = s[i+2:]
	}
	return strings.TrimSpace(s)
}

// Reload makes table start again from its first row in each direction of
// dirs (every direction sync_config allows it when dirs is empty): a
// sync_log entry with status StatusReload records it, and the next run
// reads the whole table; nothing of the history is erased. It takes the
// coordinators' lease (name lease) first, waiting up to wait for a cycle
// in flight, so that a running cycle cannot log a window after it. It
// returns the directions reloaded.
func (db *DB) Reload(ctx context.Context, table, lease string, wait time.Duration, dirs ...gapsync.Direction) ([]gapsync.Direction, error) {
	cfg, err := db.expandedConfig(ctx) // a pattern's tables by name
	if err != nil {
		return nil, err
	}
	var t *gapsync.Table
	for i := range cfg {
		if cfg[i].Name == table {
			t = &cfg[i]
		}
	}
	if t == nil {
		return nil, fmt.Errorf("%w: %q is not in sync_config", gapsync.ErrUnknownTable, table)
	}
	if len(dirs) == 0 {
		for _, d := range []gapsync.Direction{gapsync.Pull, gapsync.Push} {
			if t.Direction == d || t.Direction == gapsync.Both {
				dirs = append(dirs, d)
			}
		}
	}
	for _, d := range dirs {
		if t.Direction != d && t.Direction != gapsync.Both {
			return nil, fmt.Errorf("%w: %q is configured for %s, not %s", gapsync.ErrUnknownTable, table, t.Direction, d)
		}
	}
	holder := "reload-" + table
	deadline := time.Now().Add(wait)
	waited := false
	for {
		err := db.Acquire(ctx, lease, holder, time.Minute)
		if err == nil {
			break
		}
		if !errors.Is(err, gapsync.ErrLeaseHeld) || time.Until(deadline) <= 0 {
			return nil, fmt.Errorf("reload %s: %w (a cycle is running; try again, or wait longer)", table, err)
		}
		if !waited {
			waited = true
			db.opts.Logger.Info("reload waits for the lease: a cycle is running", "table", table, "err", err, "gives_up_in", time.Until(deadline).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(time.Second, time.Until(deadline))):
		}
	}
	defer db.Release(context.WithoutCancel(ctx), lease, holder)
	now := time.Now().UTC()
	for _, d := range dirs {
		from, _, err := db.LastWindow(ctx, table, d)
		if err != nil {
			return nil, err
		}
		row := &LogRow{RunID: "reload", TableName: table, Direction: string(d), WindowFrom: from, Status: StatusReload, StartedAt: now, FinishedAt: now}
		if _, err := db.bun.NewInsert().Model(row).Exec(ctx); err != nil {
			return nil, fmt.Errorf("storage: record the reload of %s: %w", table, err)
		}
		// A window in progress would go on from its checkpoint, past rows
		// that the reload is to send again.
		if err := db.DropCheckpoint(ctx, table, d); err != nil {
			return nil, err
		}
	}
	return dirs, nil
}
