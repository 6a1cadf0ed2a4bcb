package storage

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// DeviceProfile says what the isolation device between this process and
// its database passes: server-side prepared statements or plain text
// only, how large a statement (and a returned row) may be, and which
// kinds of statement. Set it in Options.Device of the database the
// gateway opens through the device (the external main's -device flags);
// the zero value is the "prepared" preset, today's behaviour.
//
// What each setting changes:
//
//   - TextOnly: MySQL/MariaDB statements are sent as text with their
//     values written in (the driver's interpolateParams: bytes as escaped
//     _binary literals, decimals as their exact digits); FLOAT columns are
//     read through CAST(… AS DOUBLE), whose text is the exact value, and
//     turned back into the same float32 the binary protocol gives.
//     PostgreSQL runs pgx's simple protocol (default_query_exec_mode
//     simple_protocol). No statement is prepared on the server: a
//     statement the code prepares is kept on the client and sent as text
//     at each execution. SQLite has no device and ignores the profile.
//   - MaxPacket: every statement is checked before it is sent, by the
//     largest size its text can take (each value escaped at worst), and
//     one that could pass MaxPacket is refused with gapsync.ErrTooLarge
//     naming the limit. Multi-row upserts are cut to fit, pages read for
//     the coordinator stop at MaxPacket bytes, and a file whose chunk
//     size passes MaxChunk is refused when it is offered.
//   - Statements: every statement is checked before it is sent; one of
//     another kind is refused with ErrStatementKind naming its kind.
//     Without CREATE and ALTER, Migrate creates nothing: it checks the
//     metadata tables and, where one is missing, fails with the DDL to run
//     on the database by hand (MigrationDDL prints it all).
//
// Not subject to Statements: what the driver sends by itself, which the
// device must pass: the session setup at connect (MySQL: SET time_zone;
// PostgreSQL: SET DateStyle, IntervalStyle and extra_float_digits) and
// transaction control (START TRANSACTION or BEGIN, COMMIT, ROLLBACK).
type DeviceProfile struct {
	// Name is the preset the profile comes from, for messages.
	Name string
	// TextOnly: plain statements only, no server-side prepared ones.
	TextOnly bool
	// MaxPacket is the largest statement the device passes, and the
	// largest row it returns, in bytes. 0: no limit of the device's own.
	// At least MinDevicePacket.
	MaxPacket int
	// Statements are the statement kinds the device passes, as their
	// first keyword (SELECT, INSERT, UPDATE, DELETE). Empty: all kinds.
	// It must hold SELECT, INSERT, UPDATE and DELETE: sync needs them.
	Statements []string
}

// Device presets, by name (DevicePreset).
const (
	// DevicePrepared passes everything, server-side prepared statements
	// included: the default.
	DevicePrepared = "prepared"
	// DeviceTextOnly passes plain statements only.
	DeviceTextOnly = "text-only"
	// DeviceDMLOnly passes plain SELECT, INSERT, UPDATE and DELETE only:
	// the metadata tables are created by hand (MigrationDDL).
	DeviceDMLOnly = "dml-only"
)

// MinDevicePacket is the smallest MaxPacket a profile may have: a
// statement of the metadata tables must fit.
const MinDevicePacket = 64 << 10

// deviceReserve is the part of MaxPacket kept for a statement's own text
// (names, placeholders, clauses) beside its values.
const deviceReserve = 16 << 10

// dmlKinds are the statement kinds sync cannot do without.
var dmlKinds = []string{"SELECT", "INSERT", "UPDATE", "DELETE"}

// ErrStatementKind: the isolation device does not pass statements of
// this kind (DeviceProfile.Statements). Not retryable.
var ErrStatementKind = errors.New("statement kind not passed by the isolation device")

// DevicePresets names the presets DevicePreset knows.
var DevicePresets = []string{DevicePrepared, DeviceTextOnly, DeviceDMLOnly}

// DevicePreset returns the preset profile called name ("" is
// "prepared").
func DevicePreset(name string) (DeviceProfile, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", DevicePrepared:
		return DeviceProfile{Name: DevicePrepared}, nil
	case DeviceTextOnly:
		return DeviceProfile{Name: DeviceTextOnly, TextOnly: true}, nil
	case DeviceDMLOnly:
		return DeviceProfile{Name: DeviceDMLOnly, TextOnly: true, Statements: slices.Clone(dmlKinds)}, nil
	}
	return DeviceProfile{}, fmt.Errorf("storage: unknown isolation-device profile %q; want one of %s", name, strings.Join(DevicePresets, ", "))
}

// Validate reports a profile that cannot work.
func (p DeviceProfile) Validate() error {
	if p.MaxPacket != 0 && p.MaxPacket < MinDevicePacket {
		return fmt.Errorf("storage: isolation-device packet limit %d bytes is under the %d gapsync needs", p.MaxPacket, MinDevicePacket)
	}
	if len(p.Statements) == 0 {
		return nil
	}
	for _, k := range p.Statements {
		if k == "" || strings.IndexFunc(k, func(r rune) bool { return !unicode.IsLetter(r) }) >= 0 {
			return fmt.Errorf("storage: isolation-device statement kind %q: want a keyword such as SELECT", k)
		}
	}
	for _, k := range dmlKinds {
		if !p.Allows(k) {
			return fmt.Errorf("storage: the isolation-device profile passes %s but not %s, which sync needs", strings.Join(p.Statements, ", "), k)
		}
	}
	return nil
}

// Allows reports whether the device passes statements of kind (a first
// keyword, any case).
func (p DeviceProfile) Allows(kind string) bool {
	if len(p.Statements) == 0 {
		return true
	}
	for _, k := range p.Statements {
		if strings.EqualFold(k, kind) {
			return true
		}
	}
	return false
}

// MaxChunk is the largest file chunk whose statement fits MaxPacket: the
// chunk's bytes at their worst text size (each byte escaped, or two hex
// digits on PostgreSQL) when TextOnly, beside the rest of the statement;
// a multiple of 4 KiB. 0 when the profile has no MaxPacket.
func (p DeviceProfile) MaxChunk() int64 {
	if p.MaxPacket == 0 {
		return 0
	}
	n := int64(p.MaxPacket - deviceReserve)
	if p.TextOnly {
		n /= 2
	}
	return max(n&^(4<<10-1), gapsync.MinChunkSize)
}

// statementBudget is the most that the values of one statement may
// take, counted by textSize, under MaxPacket; 0 when it has none.
func (p DeviceProfile) statementBudget() int {
	if p.MaxPacket == 0 {
		return 0
	}
	return p.MaxPacket - deviceReserve
}

// String gives the profile as the flags set it.
func (p DeviceProfile) String() string {
	name := p.Name
	if name == "" {
		name = DevicePrepared
	}
	s := name
	if p.MaxPacket > 0 {
		s += fmt.Sprintf(", packet %d bytes", p.MaxPacket)
	}
	if len(p.Statements) > 0 {
		s += ", statements " + strings.Join(p.Statements, " ")
	}
	return s
}

// counted reports whether statements are sized by their text (textSize)
// rather than by their values' encoded size.
func (p DeviceProfile) counted() bool { return p.TextOnly || p.MaxPacket > 0 }

// StatementKind returns the first keyword of the SQL statement q, upper
// case, past white space, comments and opening parentheses ("" when there
// is none).
func StatementKind(q string) string {
	i := 0
	for i < len(q) {
		switch c := q[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(':
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-', c == '#':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				return ""
			}
			i += j + 1
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return ""
			}
			i += 2 + j + 2
		default:
			j := i
			for j < len(q) && (q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] == '_') {
				j++
			}
			return strings.ToUpper(q[i:j])
		}
	}
	return ""
}

// textSize is the most bytes value v can take written into a statement's
// text: a byte string fully escaped (MySQL) or in hex (PostgreSQL), with
// its quotes and _binary or E'\\x prefix, a number's longest digits, an
// array (PostgreSQL's array upsert) its elements'.
func textSize(v any) int {
	switch x := v.(type) {
	case nil:
		return 4
	case []byte:
		return 2*len(x) + 12
	case string:
		return 2*len(x) + 12
	case [][]byte:
		n := 12
		for _, e := range x {
			n += 2*len(e) + 6
		}
		return n
	case []*string:
		n := 12
		for _, e := range x {
			n += 6
			if e != nil {
				n += 2 * len(*e)
			}
		}
		return n
	}
	return 26
}

// rowTextSize is the most a row's values take in a statement's text,
// each with its placeholder's separators.
func rowTextSize(r batch.Row) int {
	n := 3
	for _, v := range r.Values {
		n += textSize(v) + 2
	}
	return n
}

// stmtSize is what a row counts against MaxStatementBytes: its encoded
// size, or under a device profile that counts text its text size.
func (db *DB) stmtSize(r batch.Row) int {
	if db.opts.Device.counted() {
		return rowTextSize(r)
	}
	return batch.RowSize(r)
}

// devicePage caps a page's bytes at the device's packet limit.
func (db *DB) devicePage(p gapsync.Page) gapsync.Page {
	if n := db.opts.Device.statementBudget(); n > 0 && (p.Bytes <= 0 || p.Bytes > n) {
		p.Bytes = n
	}
	return p
}

// Device returns the isolation-device profile the DB was opened with.
func (db *DB) Device() DeviceProfile { return db.opts.Device }

// MaxChunkSize is the largest file chunk the device passes
// (DeviceProfile.MaxChunk); 0 for no limit. The gateway refuses an
// offered file of larger chunks.
func (db *DB) MaxChunkSize() int64 { return db.opts.Device.MaxChunk() }

// allows reports whether the device passes the statement q.
func (db *DB) allows(q string) bool {
	return db.opts.Device.Allows(StatementKind(q))
}

// deviceConnector hands out connections that check each statement
// against a device profile before it is sent, and, TextOnly, keep
// prepared statements on the client.
type deviceConnector struct {
	driver.Connector
	p DeviceProfile
	// f32 turns the DOUBLE of a FLOAT column read through
	// mysqlFloatRead back into its float32.
	f32 bool
}

func (c deviceConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &deviceConn{Conn: conn, p: c.p, f32: c.f32}, nil
}

// withDevice wraps c when the profile changes anything.
func withDevice(c driver.Connector, p DeviceProfile, f32 bool) driver.Connector {
	if !p.TextOnly && p.MaxPacket == 0 && len(p.Statements) == 0 {
		return c
	}
	return deviceConnector{Connector: c, p: p, f32: f32}
}

// deviceConn is a driver connection behind an isolation device.
type deviceConn struct {
	driver.Conn
	p   DeviceProfile
	f32 bool
}

// check refuses a statement the device does not pass.
func (c *deviceConn) check(query string, args []driver.NamedValue) error {
	if k := StatementKind(query); !c.p.Allows(k) {
		if k == "" {
			k = "(none)"
		}
		return fmt.Errorf("%w: %s (profile %s passes %s); statement: %s", ErrStatementKind, k, c.p.Name, strings.Join(c.p.Statements, ", "), clip(query))
	}
	if c.p.MaxPacket > 0 {
		n := len(query)
		for _, a := range args {
			n += textSize(a.Value)
		}
		if n > c.p.MaxPacket {
			return fmt.Errorf("%w: a %s statement of up to %d bytes, over the isolation device's packet limit of %d bytes", gapsync.ErrTooLarge, StatementKind(query), n, c.p.MaxPacket)
		}
	}
	return nil
}

// textOnly is the error for a statement the driver would have sent
// prepared.
func (c *deviceConn) textOnly(query string) error {
	return fmt.Errorf("storage: the isolation device passes text only (profile %s) and the driver cannot send this statement as text; statement: %s", c.p.Name, clip(query))
}

func (c *deviceConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.check(query, args); err != nil {
		return nil, err
	}
	ex, ok := c.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	r, err := ex.ExecContext(ctx, query, args)
	if errors.Is(err, driver.ErrSkip) && c.p.TextOnly {
		return nil, c.textOnly(query)
	}
	return r, err
}

func (c *deviceConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.check(query, args); err != nil {
		return nil, err
	}
	qu, ok := c.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	rows, err := qu.QueryContext(ctx, query, args)
	if errors.Is(err, driver.ErrSkip) && c.p.TextOnly {
		return nil, c.textOnly(query)
	}
	if err != nil || !c.f32 {
		return rows, err
	}
	return floatRows(rows), nil
}

func (c *deviceConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext: TextOnly, the statement stays on the client and each
// execution sends it as text.
func (c *deviceConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if err := c.check(query, nil); err != nil {
		return nil, err
	}
	if c.p.TextOnly {
		return &textStmt{c: c, query: query}, nil
	}
	if pc, ok := c.Conn.(driver.ConnPrepareContext); ok {
		return pc.PrepareContext(ctx, query)
	}
	return c.Conn.Prepare(query)
}

func (c *deviceConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.Conn.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	return c.Conn.Begin() //nolint:staticcheck // the driver has nothing newer
}

func (c *deviceConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (c *deviceConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *deviceConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *deviceConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// textStmt is a statement prepared on the client: each execution is a
// plain statement with its values written in.
type textStmt struct {
	c     *deviceConn
	query string
}

func (s *textStmt) Close() error  { return nil }
func (s *textStmt) NumInput() int { return -1 }

func (s *textStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *textStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *textStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	r, err := s.c.ExecContext(ctx, s.query, args)
	if errors.Is(err, driver.ErrSkip) {
		return nil, s.c.textOnly(s.query)
	}
	return r, err
}

func (s *textStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	r, err := s.c.QueryContext(ctx, s.query, args)
	if errors.Is(err, driver.ErrSkip) {
		return nil, s.c.textOnly(s.query)
	}
	return r, err
}

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, a := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return out
}

// floatRows returns rows whose FLOAT columns read through mysqlFloatRead
// give their float32, as the binary protocol does; rows without such a
// column as they are.
func floatRows(r driver.Rows) driver.Rows {
	var at []int
	for i, n := range r.Columns() {
		if isMySQLFloatRead(n) {
			at = append(at, i)
		}
	}
	if len(at) == 0 {
		return r
	}
	return &f32Rows{Rows: r, at: at}
}

type f32Rows struct {
	driver.Rows
	at []int
}

// Next converts the float64 of each FLOAT column: the DOUBLE holds the
// FLOAT's value exactly, so the conversion is exact too.
func (r *f32Rows) Next(dest []driver.Value) error {
	if err := r.Rows.Next(dest); err != nil {
		return err
	}
	for _, i := range r.at {
		if f, ok := dest[i].(float64); ok {
			dest[i] = float32(f)
		}
	}
	return nil
}

// The optional row interfaces the drivers have, passed through.
func (r *f32Rows) HasNextResultSet() bool {
	h, ok := r.Rows.(driver.RowsNextResultSet)
	return ok && h.HasNextResultSet()
}

func (r *f32Rows) NextResultSet() error {
	if h, ok := r.Rows.(driver.RowsNextResultSet); ok {
		return h.NextResultSet()
	}
	return io.EOF
}

// checkMigrated is Migrate under a profile that passes no CREATE or
// ALTER: it creates nothing, and fails with the DDL to run by hand when
// a metadata table or one of its later columns is missing.
func (db *DB) checkMigrated(ctx context.Context) error {
	var missing []string
	for _, m := range migrationModels() {
		name := db.bun.Table(typeOf(m)).Name
		if db.probe(ctx, "SELECT * FROM "+name+" WHERE 1 = 0") {
			continue
		}
		missing = append(missing, db.d.tableDDL(db.bun.NewCreateTable().Model(m).IfNotExists().String()))
		for _, ix := range indexes {
			if ix.table == name {
				missing = append(missing, db.d.createIndex(ix.name, ix.table, ix.cols))
			}
		}
	}
	if len(missing) == 0 {
		for _, c := range addedColumns {
			if !db.probe(ctx, "SELECT "+c.column+" FROM "+c.table+" WHERE 1 = 0") {
				missing = append(missing, "ALTER TABLE "+c.table+" ADD COLUMN "+c.column+" "+c.decl)
			}
		}
		if read, alter := db.d.widenLog(); read != "" {
			var n int
			if err := db.sql.QueryRowContext(ctx, read).Scan(&n); err != nil {
				return fmt.Errorf("storage: read sync_log columns: %w", err)
			}
			if n < 63 {
				missing = append(missing, alter)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: it passes only %s (profile %s), so the metadata tables cannot be created or changed from here; run this on the intranet database by hand, then start again:\n%s;",
		ErrStatementKind, strings.Join(db.opts.Device.Statements, ", "), db.opts.Device.Name, strings.Join(missing, ";\n"))
}

// probe reports whether q runs.
func (db *DB) probe(ctx context.Context, q string) bool {
	rows, err := db.sql.QueryContext(ctx, q)
	if err != nil {
		return false
	}
	return rows.Close() == nil
}

// MigrationDDL returns the statements that Migrate runs on an empty
// database of this engine: the metadata tables and their indexes, for an
// operator who creates them by hand (a device that passes DML only).
func (db *DB) MigrationDDL() []string {
	var out []string
	for _, m := range migrationModels() {
		out = append(out, db.d.tableDDL(db.bun.NewCreateTable().Model(m).IfNotExists().String()))
	}
	for _, ix := range indexes {
		out = append(out, db.d.createIndex(ix.name, ix.table, ix.cols))
	}
	return out
}
