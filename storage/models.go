package storage

import (
	"time"

	"github.com/uptrace/bun"
)

// ConfigRow is a row of sync_config: which tables may be synced, and how.
// Both sides keep their own; a table must be enabled on the reading side
// and on the writing side before a row of it moves.
type ConfigRow struct {
	bun.BaseModel `bun:"table:sync_config"`

	TableName        string    `bun:"table_name,pk,type:varchar(64)"`
	Direction        string    `bun:"direction,type:varchar(8),notnull"`
	KeyColumns       string    `bun:"key_columns,type:varchar(512),notnull"`
	CursorColumn     string    `bun:"cursor_column,type:varchar(64),notnull"`
	SoftDeleteColumn string    `bun:"soft_delete_column,type:varchar(64),notnull"`
	SoftDeleteAs     string    `bun:"soft_delete_as,type:varchar(8),notnull"`
	FileColumns      string    `bun:"file_columns,type:varchar(512),notnull"`
	FilePattern      string    `bun:"file_pattern,type:varchar(512),notnull"`
	IncludeColumns   string    `bun:"include_columns,type:varchar(1000),notnull"`
	ExcludeColumns   string    `bun:"exclude_columns,type:varchar(1000),notnull"`
	RowFilter        string    `bun:"row_filter,type:varchar(4000),notnull"`
	FilterAs         string    `bun:"filter_as,type:varchar(8),notnull"`
	RemoteName       string    `bun:"remote_name,type:varchar(64),notnull"`
	RemoteColumns    string    `bun:"remote_columns,type:varchar(2000),notnull"`
	Enabled          bool      `bun:"enabled,notnull"`
	UpdatedAt        time.Time `bun:"updated_at,type:datetime(6),notnull"`
}

// LogRow is a row of sync_log: one run of one table in one direction. It
// is kept on the internet side (seed 1.1.7) and is the audit trail. A
// table's next window starts at the WindowTo of its newest row with
// status "ok".
type LogRow struct {
	bun.BaseModel `bun:"table:sync_log"`

	ID         int64     `bun:"id,pk,autoincrement"`
	RunID      string    `bun:"run_id,type:varchar(64),notnull"`
	TableName  string    `bun:"table_name,type:varchar(64),notnull"`
	Direction  string    `bun:"direction,type:varchar(8),notnull"`
	WindowFrom string    `bun:"window_from,type:varchar(63),notnull"`
	WindowTo   string    `bun:"window_to,type:varchar(63),notnull"`
	Batches    int       `bun:"batches,notnull"`
	Rows       int64     `bun:"rows_read,notnull"`
	Written    int64     `bun:"rows_written,notnull"`
	Duplicates int       `bun:"duplicates,notnull"`
	Conflicts  int       `bun:"conflicts,notnull"`
	Bytes      int64     `bun:"bytes,notnull"`
	Status     string    `bun:"status,type:varchar(16),notnull"`
	Error      string    `bun:"error,type:text,notnull"`
	StartedAt  time.Time `bun:"started_at,type:datetime(6),notnull"`
	FinishedAt time.Time `bun:"finished_at,type:datetime(6),notnull"`
}

// Log statuses.
const (
	StatusOK     = "ok"
	StatusFailed = "failed"
)

// AppliedRow is the applied-batch ledger on the writing side. Its row is
// inserted in the same transaction as the batch's rows, so a batch that
// arrives twice (a retry after a lost response) is applied once, and the
// second arrival gets the first one's result back.
type AppliedRow struct {
	bun.BaseModel `bun:"table:sync_applied"`

	BatchID   string    `bun:"batch_id,pk,type:varchar(64)"`
	TableName string    `bun:"table_name,type:varchar(64),notnull"`
	Direction string    `bun:"direction,type:varchar(8),notnull"`
	Rows      int       `bun:"rows_in,notnull"`
	Written   int64     `bun:"rows_written,notnull"`
	Bytes     int64     `bun:"bytes,notnull"`
	Conflicts []byte    `bun:"conflicts,type:longblob"`
	AppliedAt time.Time `bun:"applied_at,type:datetime(6),notnull"`
}

// VersionRow is the row-version ledger of a table synced both ways: for
// each key, a hash of the row as sync last wrote it here (or "deleted").
// A row read for sending whose hash matches arrived by sync and is not
// sent back (no echo); a local row whose hash differs was changed here.
type VersionRow struct {
	bun.BaseModel `bun:"table:sync_row_version"`

	TableName string `bun:"table_name,pk,type:varchar(64)"`
	KeyHash   string `bun:"key_hash,pk,type:varchar(32)"`
	RowHash   string `bun:"row_hash,type:varchar(32),notnull"`
}

// ConflictRow records one settled conflict with both versions, for
// operators (internet side).
type ConflictRow struct {
	bun.BaseModel `bun:"table:sync_conflict"`

	ID         int64     `bun:"id,pk,autoincrement"`
	RunID      string    `bun:"run_id,type:varchar(64),notnull"`
	TableName  string    `bun:"table_name,type:varchar(64),notnull"`
	KeyText    string    `bun:"key_text,type:text,notnull"`
	Policy     string    `bun:"policy,type:varchar(64),notnull"`
	Winner     string    `bun:"winner,type:varchar(16),notnull"`
	Internet   string    `bun:"internet_version,type:longtext,notnull"`
	Intranet   string    `bun:"intranet_version,type:longtext,notnull"`
	DetectedAt time.Time `bun:"detected_at,type:datetime(6),notnull"`
}

// LeaseRow is the one-coordinator-at-a-time lease (internet side).
type LeaseRow struct {
	bun.BaseModel `bun:"table:sync_lease"`

	Name      string `bun:"name,pk,type:varchar(64)"`
	Holder    string `bun:"holder,type:varchar(64),notnull"`
	ExpiresAt string `bun:"expires_at,type:varchar(32),notnull"`
}

// MessageRow remembers the id of every authenticated request the gateway
// accepted, so a replay is refused even after the gateway restarts.
// SeenAt is the envelope's own (sealed) time, not this host's clock. Rows
// below the replay watermark (sync_meta) are purged; an envelope sealed
// before the watermark is refused whether or not its id is still here.
type MessageRow struct {
	bun.BaseModel `bun:"table:sync_message"`

	MessageID string    `bun:"message_id,pk,type:varchar(64)"`
	SeenAt    time.Time `bun:"seen_at,type:datetime(6),notnull"`
}

// MetaRow is one named value of this side's sync state. The row
// "replay_watermark" holds, in Unix nanoseconds, the time below which the
// replay guard and the applied-batch ledger have forgotten what they
// accepted: an envelope sealed, or a batch made, before it is refused as
// stale. It only ever rises.
type MetaRow struct {
	bun.BaseModel `bun:"table:sync_meta"`

	Name  string `bun:"name,pk,type:varchar(64)"`
	Value int64  `bun:"value,notnull"`
}

var models = []any{(*ConfigRow)(nil), (*LogRow)(nil), (*AppliedRow)(nil), (*MessageRow)(nil),
	(*VersionRow)(nil), (*ConflictRow)(nil), (*LeaseRow)(nil), (*MetaRow)(nil), (*VerifyRow)(nil),
	(*VerifyProgressRow)(nil), (*CheckpointRow)(nil)}

var indexes = []struct{ name, table, cols string }{
	{"sync_log_window", "sync_log", "table_name, direction, status, id"},
	{"sync_message_seen", "sync_message", "seen_at"},
	{"sync_verify_run", "sync_verify", "run_id, table_name"},
}

// VerifyRow is a row of sync_verify, the verifications' results, kept on
// the internet side: per table and run one row of Kind "table" with the
// counts, then one per row that differs (Kind a gapsync.DiffKind).
type VerifyRow struct {
	bun.BaseModel `bun:"table:sync_verify"`

	ID         int64     `bun:"id,pk,autoincrement"`
	RunID      string    `bun:"run_id,type:varchar(64),notnull"`
	TableName  string    `bun:"table_name,type:varchar(64),notnull"`
	Kind       string    `bun:"kind,type:varchar(16),notnull"`
	Side       string    `bun:"side,type:varchar(16),notnull"`
	KeyText    string    `bun:"key_text,type:text,notnull"`
	Columns    string    `bun:"columns,type:text,notnull"`
	Ranges     int       `bun:"ranges,notnull"`
	Rows       int64     `bun:"rows_compared,notnull"`
	Differ     int       `bun:"differ,notnull"`
	TookMS     int64     `bun:"took_ms,notnull"`
	VerifiedAt time.Time `bun:"verified_at,type:datetime(6),notnull"`
	// KeyData is a differing row's key values in their wire form (hex),
	// Hashes its hash on each side as the verification saw it
	// ("internet:intranet", hex, either empty for no row): what a
	// verification continued after a stop needs to report and repair
	// the rows found before it.
	KeyData string `bun:"key_data,type:text,nullzero"`
	Hashes  string `bun:"hashes,type:varchar(80),nullzero"`
}

// VerifyProgressRow is how far the verification of one table in a run
// has come (gapsync.VerifyCheckpoint), kept on the internet side and
// updated as the verification goes, so that one killed midway continues
// from its last finished range.
type VerifyProgressRow struct {
	bun.BaseModel `bun:"table:sync_verify_progress"`

	RunID     string `bun:"run_id,pk,type:varchar(64)"`
	TableName string `bun:"table_name,pk,type:varchar(64)"`
	// Tables lists every table of the run, comma separated, in order.
	Tables  string `bun:"tables,type:text,notnull"`
	Columns string `bun:"columns,type:text,notnull"`
	Salt    string `bun:"salt,type:varchar(128),notnull"`
	// AfterKey is the key of the last row compared, in its wire form
	// (hex); empty before the first range.
	AfterKey  string    `bun:"after_key,type:text,nullzero"`
	Ranges    int       `bun:"ranges,notnull"`
	Rows      int64     `bun:"rows_compared,notnull"`
	TookMS    int64     `bun:"took_ms,notnull"`
	Done      bool      `bun:"done,notnull"`
	StartedAt time.Time `bun:"started_at,type:datetime(6),notnull"`
	UpdatedAt time.Time `bun:"updated_at,type:datetime(6),notnull"`
}

// VerifyTable is the Kind of a table's summary row in sync_verify.
const VerifyTable = "table"
