package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/gapsync/gapsync"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/mysqldialect"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// Options tune a DB. A nil *Options gives the defaults.
type Options struct {
	// Logger receives structured logs. Default: discard.
	Logger *slog.Logger
	// Lag keeps a window's upper bound this far behind the database clock,
	// so that rows stamped just before the bound but committed just after
	// it are not skipped. Default 2s.
	Lag time.Duration
	// MaxTxAge: on MySQL/MariaDB the upper bound is also held before the
	// start of every open transaction that has already written rows (read
	// from SHOW ENGINE INNODB STATUS, which needs the PROCESS privilege), unless that transaction is older than MaxTxAge or its
	// connection's default database is another one. Such a transaction's
	// rows carry cursor values from before it commits. When the open
	// transactions cannot be seen (no privilege, or a view that does not
	// refresh), the bound rests on Lag alone. Default 15 minutes.
	MaxTxAge time.Duration
	// CursorMargin holds an integer cursor's window bound this many values
	// below one past MAX(cursor), for applications that take versions
	// before they write them. Default 0: the open-transaction guard (see
	// MaxTxAge) already holds the bound behind uncommitted writers.
	CursorMargin int64
	// MaxStatementBytes caps the bound parameters of one multi-row upsert.
	// Keep it well under the server's max_allowed_packet (MariaDB's default
	// is 16 MiB) and under what the isolation gateway lets through.
	// Default 4 MiB. A single row larger than this is refused with
	// gapsync.ErrTooLarge.
	MaxStatementBytes int
	// MaxStatementRows caps the rows of one multi-row upsert. Default 500.
	MaxStatementRows int
	// ReplayHorizon is how long accepted message ids and applied batch ids
	// are remembered, counted back from the newest accepted time; older
	// envelopes and batches are refused as stale (see Remember). It must
	// be at least twice the envelope skew (syncer.NewGateway refuses
	// less). Default 1 hour.
	ReplayHorizon time.Duration
	// Device is what the isolation device between this process and the
	// database passes (see DeviceProfile and its presets): the gateway's
	// intranet database behind a device that passes text only, packets
	// up to a size, or some statement kinds. MaxStatementBytes is held
	// under its packet limit. SQLite ignores it. Default: the "prepared"
	// preset, everything passes.
	Device DeviceProfile
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.Lag == 0 {
		r.Lag = 2 * time.Second
	}
	if r.MaxTxAge == 0 {
		r.MaxTxAge = 15 * time.Minute
	}
	if r.CursorMargin < 0 {
		r.CursorMargin = 0
	}
	if r.MaxStatementBytes == 0 {
		r.MaxStatementBytes = 4 << 20
	}
	if r.MaxStatementRows == 0 {
		r.MaxStatementRows = 500
	}
	if r.ReplayHorizon == 0 {
		r.ReplayHorizon = time.Hour
	}
	if r.Device.Name == "" {
		r.Device.Name = DevicePrepared
		if r.Device.TextOnly || r.Device.MaxPacket > 0 || len(r.Device.Statements) > 0 {
			r.Device.Name = "custom"
		}
	}
	if n := r.Device.statementBudget(); n > 0 && r.MaxStatementBytes > n {
		r.MaxStatementBytes = n
	}
	return r
}

// DB is one zone's database as gapsync sees it: the sync metadata tables
// and the configured user tables. It reads changes (ChangeSource), applies
// batches (IsolationWriter), keeps the sync log (Journal) and remembers
// accepted message ids (ReplayGuard). It is safe for concurrent use.
type DB struct {
	bun  *bun.DB
	sql  *sql.DB
	d    dialect
	opts Options

	meta      sync.Map // cached table shapes (see metaTTL); sync_config is not cached
	warnOnce  sync.Once
	replay    replayState  // purge bookkeeping (replay.go)
	intSeen   intHistory   // recent tops of integer cursors, for the open-transaction guard
	staleView atomic.Value // time.Time: until then a cached view of the open transactions is not tried (writers.go)
	ledgers   ledgerStats  // growth of the ledgers since their statistics were refreshed (analyze.go)
}

// OpenMySQL opens a MySQL or MariaDB database from a go-sql-driver DSN
// ("user:pass@tcp(host:3306)/db"). It fixes the settings exactness depends
// on: the session time zone is UTC (so TIMESTAMP values travel without a
// zone shift or a DST fold), values come back unparsed (parseTime=false)
// through server-side prepared statements (interpolateParams=false, so
// FLOAT and DOUBLE come back in binary form, bit-exact), and the
// connection character set is utf8mb4. Under a text-only device profile
// (Options.Device) statements go as text with their values written in
// (interpolateParams=true) and FLOAT columns are read through a DOUBLE,
// which keeps them bit-exact too.
func OpenMySQL(dsn string, o *Options) (*DB, error) {
	opts := o.withDefaults()
	if err := opts.Device.Validate(); err != nil {
		return nil, err
	}
	dev := opts.Device
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: parse MySQL DSN: %w", err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.ParseTime = false
	cfg.InterpolateParams = dev.TextOnly
	if dev.MaxPacket > 0 {
		cfg.MaxAllowedPacket = dev.MaxPacket
	}
	cfg.ClientFoundRows = false
	cfg.MultiStatements = false
	cfg.Collation = "utf8mb4_general_ci"
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: MySQL connector: %w", err)
	}
	sqldb := sql.OpenDB(withDevice(conn, dev, dev.TextOnly))
	sqldb.SetConnMaxLifetime(30 * time.Minute)
	sqldb.SetMaxIdleConns(8)
	return newDB(bun.NewDB(sqldb, mysqldialect.New()), mysqlDialect{text: dev.TextOnly}, &opts)
}

// OpenPostgres opens a PostgreSQL database from a libpq URL or key=value
// string ("postgres://user:pass@host:5432/db?sslmode=disable"), through
// pgx. Like OpenMySQL it fixes the settings exactness depends on, per
// session: DateStyle ISO, IntervalStyle postgres, and extra_float_digits
// 1 (the shortest text that reads back bit-exact). The session keeps the
// database's own time zone, the one its applications write in, so that a
// now() in a DEFAULT or a trigger stamps a row that sync writes as it
// stamps theirs; gapsync reads and sends timestamptz values as UTC wall
// time and compares them as such (dialect_postgres.go), and reads the
// zone once, for TIMESTAMP WITHOUT TIME ZONE cursors. Tables are those of
// the first schema of the search_path. Under a text-only device profile
// (Options.Device) statements run on pgx's simple protocol
// (default_query_exec_mode=simple_protocol): values are written into the
// statement's text, none is prepared on the server; as values are read as
// text either way (SelectExpr) they read back the same.
func OpenPostgres(dsn string, o *Options) (*DB, error) {
	opts := o.withDefaults()
	if err := opts.Device.Validate(); err != nil {
		return nil, err
	}
	dev := opts.Device
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: parse PostgreSQL DSN: %s", redactPG(err))
	}
	if dev.TextOnly {
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	}
	var zone atomic.Value
	var bitXor atomic.Bool
	after := func(ctx context.Context, c *pgx.Conn) error {
		if zone.Load() == nil {
			var z string
			var x bool
			if err := c.QueryRow(ctx, "SELECT current_setting('TimeZone'), "+pgHasBitXor).Scan(&z, &x); err != nil {
				return err
			}
			bitXor.Store(x)
			zone.Store(z)
		}
		_, err := c.Exec(ctx, "SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 1")
		return err
	}
	sqldb := sql.OpenDB(withDevice(pgConnector{stdlib.GetConnector(*cfg, stdlib.OptionAfterConnect(after))}, dev, false))
	sqldb.SetConnMaxLifetime(30 * time.Minute)
	sqldb.SetMaxIdleConns(8)
	if err := sqldb.PingContext(context.Background()); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("storage: connect postgres: %w", err)
	}
	z, _ := zone.Load().(string)
	return newDB(bun.NewDB(sqldb, pgdialect.New()), pgDialect{zone: z, bitXor: bitXor.Load()}, &opts)
}

// redactPG says what is wrong with a DSN pgx cannot parse without
// repeating it: pgx's own text may hold the password.
func redactPG(err error) string {
	return "it is malformed; expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable] or key=value pairs (host=… dbname=…)"
}

// OpenSQLite opens (creating if needed) an SQLite database file, the
// embedded default. It uses the pure-Go driver (no cgo), WAL journaling,
// immediate write transactions and a busy timeout, so several goroutines
// may share it. An embedded database has no isolation device: it ignores
// Options.Device.
func OpenSQLite(path string, o *Options) (*DB, error) {
	if o != nil && !reflect.ValueOf(o.Device).IsZero() {
		c := *o
		c.Device = DeviceProfile{}
		o = &c
	}
	if path == "" || strings.Contains(path, "?") {
		return nil, fmt.Errorf("storage: SQLite path %q must be a plain file path", path)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(20000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	sqldb, err := sql.Open(sqliteshim.ShimName, "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("storage: open SQLite %s: %w", path, err)
	}
	sqldb.SetMaxOpenConns(4)
	return newDB(bun.NewDB(sqldb, sqlitedialect.New()), sqliteDialect{}, o)
}

func newDB(b *bun.DB, d dialect, o *Options) (*DB, error) {
	db := &DB{bun: b, sql: b.DB, d: d, opts: o.withDefaults()}
	if err := b.PingContext(context.Background()); err != nil {
		b.Close()
		return nil, fmt.Errorf("storage: connect %s: %w", d.Name(), err)
	}
	return db, nil
}

// Bun returns the underlying bun.DB, for a host that wants to share it.
func (db *DB) Bun() *bun.DB { return db.bun }

// Dialect returns "mysql", "postgres" or "sqlite".
func (db *DB) Dialect() string { return db.d.Name() }

// Close closes the connection pool.
func (db *DB) Close() error { return db.bun.Close() }

// Migrate creates the sync metadata tables and their indexes if they do not
// exist. It is idempotent and safe to call at every start. Under a
// device profile that passes no CREATE (DeviceProfile.Statements) it
// creates nothing: it fails, with the DDL to run by hand, when a table or
// column is missing.
func (db *DB) Migrate(ctx context.Context) error {
	if !db.allows("CREATE TABLE") || !db.allows("ALTER TABLE") {
		return db.checkMigrated(ctx)
	}
	for _, m := range migrationModels() {
		q := db.d.tableDDL(db.bun.NewCreateTable().Model(m).IfNotExists().String())
		if _, err := db.sql.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("storage: create %T: %w", m, err)
		}
	}
	for _, ix := range indexes {
		if _, err := db.sql.ExecContext(ctx, db.d.createIndex(ix.name, ix.table, ix.cols)); err != nil && !isDuplicateIndex(err) {
			return fmt.Errorf("storage: create index %s: %w", ix.name, err)
		}
	}
	if err := db.widenLog(ctx); err != nil {
		return err
	}
	for _, c := range addedColumns {
		if err := db.addColumn(ctx, c.table, c.column, c.decl); err != nil {
			return err
		}
	}
	return nil
}

func migrationModels() []any {
	return append(slices.Clone(models), (*ParkedRow)(nil), (*DriftRow)(nil))
}

func typeOf(m any) reflect.Type { return reflect.TypeOf(m) }

// addedColumns are the columns added since a table was first made:
// file_record.sm3 (SM3 digests, syncer's FileOptions.Digest), and what a
// continued verification needs of the rows found before a stop.
var addedColumns = []struct{ table, column, decl string }{
	{"file_record", "sm3", "VARCHAR(64) NOT NULL DEFAULT ''"},
	{"sync_verify", "key_data", "TEXT NULL"},
	{"sync_verify", "hashes", "VARCHAR(80) NULL"},
	// sync_config's column lists and row filter (Table.Columns,
	// Exclude, Filter, FilterAs).
	{"sync_config", "include_columns", "VARCHAR(1000) NOT NULL DEFAULT ''"},
	{"sync_config", "exclude_columns", "VARCHAR(1000) NOT NULL DEFAULT ''"},
	{"sync_config", "row_filter", "VARCHAR(4000) NOT NULL DEFAULT ''"},
	{"sync_config", "filter_as", "VARCHAR(8) NOT NULL DEFAULT ''"},
	{"sync_config", "remote_name", "VARCHAR(64) NOT NULL DEFAULT ''"},
	{"sync_config", "remote_columns", "VARCHAR(2000) NOT NULL DEFAULT ''"},
}

// addColumn adds column to a metadata table created before the column
// existed. The probe and the ALTER are the same SQL on every engine.
func (db *DB) addColumn(ctx context.Context, table, column, decl string) error {
	rows, err := db.sql.QueryContext(ctx, "SELECT "+column+" FROM "+table+" WHERE 1 = 0")
	if err == nil {
		return rows.Close()
	}
	if _, err := db.sql.ExecContext(ctx, "ALTER TABLE "+table+" ADD COLUMN "+column+" "+decl); err != nil {
		return fmt.Errorf("storage: add %s.%s: %w", table, column, err)
	}
	return nil
}

// widenLog brings sync_log's window columns, VARCHAR(32) before integer
// cursors with tombstones had two-part bounds, to VARCHAR(63): under 256
// bytes in every character set, so MySQL and MariaDB change it in place.
func (db *DB) widenLog(ctx context.Context) error {
	read, alter := db.d.widenLog()
	if read == "" {
		return nil
	}
	var n int
	if err := db.sql.QueryRowContext(ctx, read).Scan(&n); err != nil {
		return fmt.Errorf("storage: read sync_log columns: %w", err)
	}
	if n >= 63 {
		return nil
	}
	if _, err := db.sql.ExecContext(ctx, alter); err != nil {
		return fmt.Errorf("storage: widen sync_log windows: %w", err)
	}
	return nil
}

func isDuplicateIndex(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1061 // ER_DUP_KEYNAME
}

// Open opens a database from one string, as the example mains take it:
// "sqlite:PATH" for an SQLite file, a "postgres://" or "postgresql://"
// URL for OpenPostgres, anything else as a MySQL/MariaDB DSN for
// OpenMySQL.
func Open(dsn string, o *Options) (*DB, error) {
	if p, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		return OpenSQLite(p, o)
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return OpenPostgres(dsn, o)
	}
	return OpenMySQL(dsn, o)
}

// forgetColumns drops the cached shape of table (its columns and what it
// may do to a written row, see writeEffects), so that the next read sees
// an ALTER or a CREATE TRIGGER made since. A scan forgets it at its first
// page.
func (db *DB) forgetColumns(table string) {
	db.meta.Delete("columns\x00" + table)
	db.meta.Delete("effects\x00" + table)
}

// freshColumns re-reads table's cached shape when the table's columns
// are not the cached ones any more (an ALTER made here since), found by a
// query that reads no row: the two-way ledger must hash a written row in
// the form the next scan reads it, every column included.
func (db *DB) freshColumns(ctx context.Context, table string) error {
	cols, err := db.columns(ctx, table)
	if err != nil {
		return err
	}
	q, byRows := db.d.liveColumns(table)
	rows, err := db.sql.QueryContext(ctx, q.SQL, q.Args...)
	if err != nil {
		return fmt.Errorf("storage: read the columns of %s: %w", table, err)
	}
	var live []string
	if byRows {
		for rows.Next() {
			var n string
			if err = rows.Scan(&n); err != nil {
				break
			}
			live = append(live, n)
		}
		if err == nil {
			err = rows.Err()
		}
	} else {
		live, err = rows.Columns()
	}
	rows.Close()
	if err != nil {
		return fmt.Errorf("storage: read the columns of %s: %w", table, err)
	}
	stale := len(live) != len(cols)
	for _, n := range live {
		if _, ok := findColumn(cols, n); !ok {
			stale = true
		}
	}
	if stale {
		db.forgetColumns(table)
	}
	return nil
}

// columnsHaving returns table's columns like columns, but re-reads them
// once before answering when the cached shape lacks one of names or says
// the table does not exist: an ALTER ADD COLUMN (or a CREATE TABLE) made
// since the shape was cached counts at the next request, and a refusal
// is never a stale one.
func (db *DB) columnsHaving(ctx context.Context, table string, names []string) ([]column, error) {
	cols, err := db.columns(ctx, table)
	stale := errors.Is(err, gapsync.ErrUnknownTable)
	for _, n := range names {
		if err == nil && !stale {
			if _, ok := findColumn(cols, n); !ok {
				stale = true
			}
		}
	}
	if !stale {
		return cols, err
	}
	db.forgetColumns(table)
	return db.columns(ctx, table)
}
