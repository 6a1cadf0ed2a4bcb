package syncer

import (
	"context"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/transport"
)

// ChangeSource reads the changed rows of configured tables from one zone's
// database. The storage package's *DB implements it for MySQL/MariaDB,
// PostgreSQL and SQLite; storage/sqltest is the conformance suite for other adapters.
// Implementations must be safe for concurrent use by several tables.
type ChangeSource interface {
	// Tables returns the tables enabled for direction d in this side's
	// sync_config. Only these are ever read.
	Tables(ctx context.Context, d gapsync.Direction) ([]gapsync.Table, error)

	// Bound returns the upper bound for the next window of t, from the
	// database's clock (never the host's), held back far enough that a row
	// stamped before the bound but committed after it cannot be missed.
	// Bounds are text: "2006-01-02 15:04:05.000000" for a time cursor, a
	// decimal number for an integer cursor; compare them with
	// gapsync.CompareBounds.
	Bound(ctx context.Context, t gapsync.Table) (string, error)

	// Changes calls fn with the rows of t whose cursor lies in w, one page
	// at a time; a page respects p. It holds no query open while fn runs.
	// The batch it passes has Table, Columns, Rows, WindowFrom, WindowTo
	// and Seq set; the caller sets ID and Direction. Row values are exactly
	// what the database returned (see package batch). An error from fn
	// stops the scan and is returned unchanged. Retrying is safe.
	Changes(ctx context.Context, t gapsync.Table, w gapsync.Window, p gapsync.Page, fn func(*batch.Batch) error) error
}

// Journal is the sync log on the internet side (seed 1.1.7): every run of
// every table is recorded, and a table's next window starts where its
// latest successful run ended.
type Journal interface {
	// LastWindow returns the To of the newest successful run of table in
	// direction d, and false if there is none.
	LastWindow(ctx context.Context, table string, d gapsync.Direction) (string, bool, error)
	// Record appends one run's entry. It must be durable when it returns:
	// a window advances only through this call.
	Record(ctx context.Context, e gapsync.LogEntry) error
}

// IsolationWriter applies batches to the intranet database through the
// isolation device. Vendor devices pass only some statements; the storage
// adapter keeps to multi-row INSERT … ON DUPLICATE KEY UPDATE (ON CONFLICT
// on PostgreSQL and SQLite), INSERT (the
// ledgers, file records and chunks), DELETE (rows deleted on the other
// side by primary key, and its own bookkeeping past retention), UPDATE
// (its own bookkeeping only: records and chunks acknowledged) and SELECT,
// with a configurable statement size (see the storage package).
type IsolationWriter interface {
	// Apply writes b and returns the result to log. It must be idempotent
	// by b.ID: a batch already applied is not applied again, and its first
	// result comes back with Duplicate set. The rows and the record of the
	// batch id commit together or not at all.
	//
	// It must refuse, before writing anything: a table not enabled for
	// b.Direction in the intranet's sync_config (gapsync.ErrUnknownTable),
	// invalid identifiers (gapsync.ErrBadIdentifier), columns the table
	// lacks (gapsync.ErrUnknownColumn), and rows that do not fit the
	// columns (gapsync.ErrMalformed). Retrying after any other error is
	// safe.
	Apply(ctx context.Context, b *batch.Batch) (gapsync.Result, error)
}

// IsolationReader reads the intranet database for the pull flow (seed
// 1.2), through the isolation device, with SELECT only.
type IsolationReader interface {
	// Table returns the configuration of a table enabled for d in the
	// intranet's sync_config, or an error wrapping gapsync.ErrUnknownTable
	// (or ErrBadIdentifier for a name that is not an identifier).
	Table(ctx context.Context, name string, d gapsync.Direction) (gapsync.Table, error)
	// Bound is ChangeSource.Bound for the intranet database.
	Bound(ctx context.Context, t gapsync.Table) (string, error)
	// ReadPage reads one page of t's changes in w after the opaque
	// position after (nil first) and returns the page, the next position
	// and whether more may follow. Pages leave out rows that arrived by
	// sync (no echo). A malformed position is refused with
	// gapsync.ErrMalformed. Retrying is safe.
	ReadPage(ctx context.Context, t gapsync.Table, w gapsync.Window, after []byte, p gapsync.Page) (*batch.Batch, []byte, bool, error)
}

// IntranetDB is what the gateway needs of the intranet database.
type IntranetDB interface {
	IsolationWriter
	IsolationReader
}

// ConflictLog keeps settled conflicts for operators (internet side).
type ConflictLog interface {
	RecordConflict(ctx context.Context, c gapsync.ConflictRecord) error
}

// Leaser is the one-coordinator-at-a-time lease, kept by the database's
// clock. Acquire takes or renews name for holder for ttl, or returns an
// error wrapping gapsync.ErrLeaseHeld. Release lets it go early.
type Leaser interface {
	Acquire(ctx context.Context, name, holder string, ttl time.Duration) error
	Release(ctx context.Context, name, holder string) error
}

// InternetDB is what the coordinator needs of the internet database:
// changes to push, the sync log, a writer for pulled rows, the conflict
// log and the lease. storage's *DB is one.
type InternetDB interface {
	ChangeSource
	Journal
	IsolationWriter
	ConflictLog
	Leaser
}

// Transport is the coordinator's view of the external-zone service. The
// transport package's *Client implements it over sealed HTTP.
type Transport interface {
	// Apply delivers b to the gateway, which applies it through its
	// IsolationWriter, and returns the gateway's result. Retrying is safe:
	// apply is idempotent by batch id. Errors wrap gapsync sentinels; a
	// refusal of the input (ErrUnknownTable, ErrMalformed, …) will not go
	// away on retry, gapsync.ErrRemote may.
	Apply(ctx context.Context, b *batch.Batch) (gapsync.Result, error)
	// Bound returns the intranet bound of table's next pull window.
	Bound(ctx context.Context, table string) (string, error)
	// Pull returns one page of a table's intranet changes. Retrying is safe.
	Pull(ctx context.Context, r transport.PullRequest) (*transport.PullPage, error)
}
