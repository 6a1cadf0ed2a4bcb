package storage

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/rules"
)

// mysqlDialect is MySQL and MariaDB (and what speaks their protocol and
// SQL closely enough: TiDB, and DM or OceanBase in MySQL mode, see the
// README). Sessions run in UTC (OpenMySQL); values come back unparsed.
// text: statements go over the text protocol (a text-only device
// profile), where FLOAT columns are read through mysqlFloatRead.
type mysqlDialect struct{ text bool }

var _ dialect = mysqlDialect{}

func (mysqlDialect) Name() string { return "mysql" }

func (mysqlDialect) Quote(s string) string {
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// SelectExpr reads a column as it is, but over the text protocol a FLOAT
// through mysqlFloatRead.
func (d mysqlDialect) SelectExpr(col, typ string) string {
	if d.text && d.valueClass(strings.ToLower(strings.TrimSpace(typ))) == classFloat32 {
		return mysqlFloatRead(d.Quote(col))
	}
	return d.Quote(col)
}

// bareReadsAsText: the driver sends a query without arguments over the
// text protocol, where a FLOAT reads with six significant digits (see
// mysqlFloatRead); where reads are prepared (not a text-only device),
// readPage prepares such a query too, so that a verification's first
// page, which has no bound yet, reads FLOATs exactly as every other page.
func (d mysqlDialect) bareReadsAsText() bool { return !d.text }

// mysqlFloatRead reads a FLOAT expression as a DOUBLE. The text protocol
// prints a FLOAT with six significant digits (3.40282e38 for the largest,
// 0.1 for 0.100000001…), which is not its value; a DOUBLE holds every
// FLOAT exactly and prints the shortest text that reads back as it, so
// the connection (deviceConn with f32) turns that back into the float32
// the binary protocol gives. The server names the result column by the
// expression, which isMySQLFloatRead recognises.
func mysqlFloatRead(quoted string) string { return "CAST(" + quoted + " AS DOUBLE)" }

// isMySQLFloatRead reports whether a result column's name is that of a
// mysqlFloatRead expression.
func isMySQLFloatRead(name string) bool {
	return strings.HasPrefix(name, "CAST(`") && strings.HasSuffix(name, "` AS DOUBLE)")
}

func (d mysqlDialect) Upsert(table string, cols, key []string, rows int) string {
	return upsert(d, table, cols, key, rows)
}

func (d mysqlDialect) onConflict(key, update []string) string {
	if len(update) == 0 { // nothing to update: a no-op assignment
		q := d.Quote(key[0])
		return "ON DUPLICATE KEY UPDATE " + q + "=" + q
	}
	var b strings.Builder
	b.WriteString("ON DUPLICATE KEY UPDATE ")
	for i, c := range update {
		if i > 0 {
			b.WriteByte(',')
		}
		q := d.Quote(c)
		b.WriteString(q + "=VALUES(" + q + ")")
	}
	return b.String()
}

func (mysqlDialect) Columns() string {
	return "SELECT COLUMN_NAME, COLUMN_TYPE, COLUMN_KEY = 'PRI', COALESCE(GENERATION_EXPRESSION, '') <> '' FROM information_schema.COLUMNS " +
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
}

func (mysqlDialect) placeholderLimit() int { return 65535 }

func (mysqlDialect) lockRows() string { return " FOR UPDATE" }

func (mysqlDialect) rowValueList() string { return "" }

// createIndex: MySQL has no CREATE INDEX IF NOT EXISTS (MariaDB has); a
// duplicate name (1061) is taken as "exists".
func (d mysqlDialect) createIndex(name, table, cols string) string {
	return "CREATE INDEX " + d.Quote(name) + " ON " + d.Quote(table) + " (" + cols + ")"
}

func (mysqlDialect) tableDDL(create string) string { return create }

func (mysqlDialect) cursorKind(typ string) (cursorKind, bool) {
	t := strings.ToLower(strings.TrimSpace(typ))
	for _, p := range []string{"tinyint", "smallint", "mediumint", "int", "bigint"} {
		if t == p || strings.HasPrefix(t, p+"(") || strings.HasPrefix(t, p+" ") {
			return kindInteger, true
		}
	}
	if strings.HasPrefix(t, "datetime") || strings.HasPrefix(t, "timestamp") {
		return kindTime, true
	}
	return 0, false
}

// clock: a TIMESTAMP column is written in the session's zone (UTC here)
// and compared in it; a DATETIME column holds the wall time of whoever
// wrote it, which for DEFAULT CURRENT_TIMESTAMP is the server's global
// zone.
func (mysqlDialect) clock(cursorType string, utc bool) string {
	expr := "CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', @@global.time_zone)"
	if utc || strings.HasPrefix(strings.ToLower(cursorType), "timestamp") {
		expr = "UTC_TIMESTAMP(6)"
	}
	return "SELECT DATE_FORMAT(" + expr + ", '%Y-%m-%d %H:%i:%s.%f')"
}

// openWriters reads information_schema.INNODB_TRX (which needs the PROCESS
// privilege) where the isolation device passes no SHOW (writerReport),
// counting the connections writerReport counts. trx_started has whole
// seconds only. The second column finds this connection's own
// transaction in the view (see writersCached).
func (mysqlDialect) openWriters() string {
	return "SELECT COALESCE(MAX(CASE WHEN trx_mysql_thread_id <> CONNECTION_ID() AND trx_rows_modified > 0 AND " +
		"trx_mysql_thread_id IN (SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() OR DB IS NULL) AND " +
		"trx_started > CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', 'SYSTEM') - INTERVAL ? SECOND " +
		"THEN TIMESTAMPDIFF(MICROSECOND, trx_started, CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', 'SYSTEM')) END), -1), " +
		"COALESCE(MAX(trx_mysql_thread_id = CONNECTION_ID()), 0) FROM information_schema.INNODB_TRX"
}

// writersCached: InnoDB refreshes INNODB_TRX on a read only when it went
// unread for 0.1 s (trx0i_s.cc); a transaction is in it once it has read
// an InnoDB table, here the sync_config metadata table.
func (mysqlDialect) writersCached() string { return "SELECT 1 FROM sync_config LIMIT 1" }

// writerReport: SHOW ENGINE INNODB STATUS (which needs the PROCESS
// privilege) lists the transactions as they are, where
// information_schema.INNODB_TRX is a cache that a read refreshes only
// once it went unread for 0.1 s, so that a monitor polling it faster
// keeps it as it was for as long as it polls. The connections counted are
// this database's and those with no default database (a writer whose
// default database is another one and names our tables with a prefix is
// not seen).
func (mysqlDialect) writerReport() (string, string) {
	return "SHOW ENGINE INNODB STATUS",
		"SELECT ID FROM information_schema.PROCESSLIST WHERE (DB = DATABASE() OR DB IS NULL) AND ID <> CONNECTION_ID()"
}

// innodbStatusMax is the most SHOW ENGINE INNODB STATUS returns; longer
// reports are cut (MAX_STATUS_SIZE in ha_innodb.cc).
const innodbStatusMax = 1 << 20

var (
	innodbTrxHead   = regexp.MustCompile(`^---TRANSACTION [0-9]+, (.*)$`)
	innodbTrxActive = regexp.MustCompile(`^ACTIVE (?:\([A-Z ]+\) )?([0-9]+) sec`)
	innodbTrxUndo   = regexp.MustCompile(`undo log entries ([0-9]+)`)
	innodbTrxThread = regexp.MustCompile(`^(?:MySQL|MariaDB) thread id ([0-9]+),`)
)

// parseWriters reads the TRANSACTIONS section of SHOW ENGINE INNODB
// STATUS: each "---TRANSACTION id, ACTIVE n sec" (whole seconds: see
// writerSlack), its "undo log entries n" (rows modified) and its
// "MySQL thread id n" (MariaDB: "MariaDB thread id"). A transaction in
// another state than ACTIVE but not "not started" (committing in memory)
// counts as just begun. A statement's text follows its thread line and
// is not read, except that a line of it that looks like a transaction's
// head starts one more (which can only hold a bound back). A report that
// InnoDB cut short is errReportCut: one without its end line, or one
// near InnoDB's limit of 1 MiB (MAX_STATUS_SIZE) that holds its
// "... truncated..." line; a statement's text that holds that line in a
// short report cannot blind the guard.
func (mysqlDialect) parseWriters(report string) ([]openTrx, error) {
	if !strings.Contains(report, "END OF INNODB MONITOR OUTPUT") ||
		(len(report) > innodbStatusMax-64<<10 && strings.Contains(report, "\n... truncated...\n")) {
		return nil, errReportCut
	}
	start := strings.Index(report, "\nLIST OF TRANSACTIONS FOR EACH SESSION:\n")
	if start < 0 {
		return nil, errReportCut
	}
	var out []openTrx
	var cur *openTrx
	threadSeen := false
	for _, line := range strings.Split(report[start+1:], "\n") {
		if m := innodbTrxHead.FindStringSubmatch(line); m != nil {
			if strings.HasPrefix(m[1], "not started") {
				cur = nil
				continue
			}
			out = append(out, openTrx{})
			cur = &out[len(out)-1]
			threadSeen = false
			if a := innodbTrxActive.FindStringSubmatch(m[1]); a != nil {
				if n, err := strconv.ParseInt(a[1], 10, 64); err == nil && n < 1<<31 {
					cur.age = time.Duration(n) * time.Second
				}
			}
			continue
		}
		if cur == nil || threadSeen {
			if strings.HasPrefix(line, "--------") { // the next section
				cur = nil
			}
			continue
		}
		if m := innodbTrxThread.FindStringSubmatch(line); m != nil {
			cur.conn, _ = strconv.ParseInt(m[1], 10, 64)
			threadSeen = true
			continue
		}
		if m := innodbTrxUndo.FindStringSubmatch(line); m != nil && m[1] != "0" {
			cur.written = true
		}
	}
	return out, nil
}

func (mysqlDialect) clockInWriteTx() bool { return false }

func (mysqlDialect) effects(table string, own []string) Query {
	return Query{SQL: "SELECT " +
		"(SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ? " +
		"AND EVENT_MANIPULATION IN ('INSERT','UPDATE') AND TRIGGER_NAME NOT IN (" + marks(len(own)) + ")), " +
		"(SELECT COALESCE(SUM(LOWER(EXTRA) LIKE '%on update%'),0) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?), " +
		"(SELECT COALESCE(SUM(LOWER(EXTRA) LIKE '%generated%' OR LOWER(EXTRA) LIKE '%virtual%' OR LOWER(EXTRA) LIKE '%persistent%' OR LOWER(EXTRA) LIKE '%stored%'),0) " +
		"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?)",
		Args: append(append([]any{table}, strAnys(own)...), table, table)}
}

// acquireLease: assignments run left to right: once holder is ours, the
// expiry follows; while another's lease is live, neither moves.
func (mysqlDialect) acquireLease(ttl time.Duration) string {
	us := strconv.FormatInt(ttl.Microseconds(), 10)
	return "INSERT INTO sync_lease (name, holder, expires_at) VALUES (?, ?, " +
		"DATE_FORMAT(UTC_TIMESTAMP(6) + INTERVAL " + us + " MICROSECOND, '%Y-%m-%d %H:%i:%s.%f')) " +
		"ON DUPLICATE KEY UPDATE holder = IF(expires_at < DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%d %H:%i:%s.%f') OR holder = VALUES(holder), VALUES(holder), holder), " +
		"expires_at = IF(holder = VALUES(holder), VALUES(expires_at), expires_at)"
}

// widenLog returns the query that reads the width of sync_log's window
// columns and the statement that widens them (see DB.widenLog).
func (mysqlDialect) widenLog() (read, alter string) {
	return "SELECT COALESCE(MIN(CHARACTER_MAXIMUM_LENGTH), 63) FROM information_schema.COLUMNS " +
			"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'sync_log' AND COLUMN_NAME IN ('window_from', 'window_to')",
		"ALTER TABLE sync_log MODIFY window_from VARCHAR(63) NOT NULL, MODIFY window_to VARCHAR(63) NOT NULL"
}

func (mysqlDialect) flavorQuery() string { return "SELECT VERSION()" }

func (mysqlDialect) flavor(version string) string {
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return flavorMariaDB
	}
	return flavorMySQL
}

func (mysqlDialect) triggers() string {
	return "SELECT TRIGGER_NAME, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() " +
		"AND EVENT_OBJECT_TABLE = ? AND TRIGGER_NAME IN (?, ?) AND ACTION_TIMING = 'AFTER' AND EVENT_MANIPULATION = 'DELETE'"
}

func (d mysqlDialect) dropTrigger(name, _ string) string {
	return "DROP TRIGGER IF EXISTS " + d.Quote(name)
}

// tombstoneSQL: the deletion time is a DATETIME(6) in the server's global
// zone (the zone a DATETIME cursor's DEFAULT CURRENT_TIMESTAMP writes), a
// TIMESTAMP(6) for a TIMESTAMP cursor, and UTC for an integer cursor's
// own window.
func (d mysqlDialect) tombstoneSQL(t gapsync.Table, cols []column, kind cursorKind) ([]string, triggerDef) {
	s := tombstoneParts(d, t, cols, kind)
	atType, now := "DATETIME(6)", "CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', @@global.time_zone)"
	switch {
	case kind == kindInteger:
		now = "UTC_TIMESTAMP(6)"
	case strings.HasPrefix(strings.ToLower(s.cur.Type), "timestamp"):
		atType, now = "TIMESTAMP(6)", "NOW(6)"
	}
	setup := []string{
		"CREATE TABLE IF NOT EXISTS " + d.Quote(s.tt) + " (" + strings.Join(s.defs, ", ") + ", " + s.at + " " + atType +
			" NOT NULL" + s.extraDef + ", PRIMARY KEY (" + s.keyList + "), KEY " + d.Quote(s.tt+"_at") + " (" + s.at + ")) ENGINE=InnoDB",
	}
	set := s.at + " = VALUES(" + s.at + ")"
	if s.dc != "" {
		set += ", " + s.dc + " = VALUES(" + s.dc + ")"
	}
	body := s.insert(now) + " ON DUPLICATE KEY UPDATE " + set + tombstoneMark
	for i, n := range s.def.names {
		s.def.stored[i] = body
		s.def.create[i] = "TRIGGER " + d.Quote(n) + " AFTER DELETE ON " + d.Quote(t.Name) + " FOR EACH ROW " + body
	}
	return setup, s.def
}

func (mysqlDialect) maxIdentifier() int { return 64 }

// writeValue gives a value from another engine the Go type the MySQL
// driver reads back for its column (so that the version ledger, which
// hashes keys and rows by type, sees one form): int64 for an integer
// column (a boolean, "true"/"false", as 1/0; an unsigned value past
// int64 as its digits, as the driver gives it), float32 or float64 for
// FLOAT and DOUBLE (from text, the binary float it spells: the shortest
// text of the largest FLOAT reads, as a DOUBLE literal, past FLOAT's
// range), bytes for everything else.
func (d mysqlDialect) writeValue(s colSpec, v any) (any, error) {
	switch x := v.(type) {
	case string, []byte:
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	default:
		return v, nil // numbers as MySQL's driver gives them, taken as numbers (YEAR 0 is 0000, '0' is 2000)
	}
	text, _ := textOf(v)
	switch class := d.valueClass(s.typ); {
	case class == classMyInt, strings.HasPrefix(s.typ, "year"):
		text = boolDigit(text)
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return n, nil
		}
		return []byte(text), nil
	case class == classFloat32, class == classFloat64:
		bits := 64
		if d.valueClass(s.typ) == classFloat32 && !strings.Contains(s.typ, ",") {
			bits = 32
		}
		f, err := strconv.ParseFloat(text, bits)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%q is not a number MySQL can store in %s", clip(text), s.typ)
		}
		if bits == 32 {
			return float32(f), nil
		}
		return f, nil
	}
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return []byte(text), nil
}

func boolDigit(s string) string {
	switch s {
	case "true":
		return "1"
	case "false":
		return "0"
	}
	return s
}

func (mysqlDialect) defaultTimePrecision() int { return 0 }

// valueClass: the driver gives integers as int64 or uint64, FLOAT as
// float32, DOUBLE as float64 (binary protocol), everything else as bytes.
func (mysqlDialect) valueClass(typ string) valueClass {
	switch {
	case strings.Contains(typ, "int"):
		return classMyInt
	case strings.HasPrefix(typ, "float"):
		return classFloat32
	case strings.HasPrefix(typ, "double"), strings.HasPrefix(typ, "real"):
		return classFloat64
	}
	return classBytes
}

// writerSlack: trx_started has whole seconds only.
func (mysqlDialect) writerSlack() time.Duration { return time.Second }

// defaultDecimalScale: MySQL's DECIMAL is DECIMAL(10,0).
func (mysqlDialect) defaultDecimalScale() int { return 0 }

func (mysqlDialect) insertValuesWord() string { return "VALUES" }

// analyze: InnoDB and SQLite plan these lookups by the primary key without statistics.
func (mysqlDialect) analyze(string) string { return "" }

func (mysqlDialect) param(string) string { return "?" }

func (d mysqlDialect) liveColumns(table string) (Query, bool) {
	return Query{SQL: "SELECT * FROM " + d.Quote(table) + " WHERE 1 = 0"}, false
}

// verifyClass: FLOAT is four bytes (FLOAT(p) over 24 reads back as
// double), DOUBLE and REAL eight; TINYINT(1) is read as a number.
func (mysqlDialect) verifyClass(typ string) string {
	t := strings.ToLower(typ)
	switch {
	case strings.HasPrefix(t, "datetime"), strings.HasPrefix(t, "timestamp"), strings.HasPrefix(t, "time"), t == "date":
		return rules.ClassTime
	case strings.HasPrefix(t, "float"):
		return rules.ClassFloat32
	case strings.HasPrefix(t, "double"), strings.HasPrefix(t, "real"):
		return rules.ClassFloat64
	}
	return ""
}

// running reads Threads_running, the server's statements in progress (the
// load gh-ost's max-load watches); SHOW GLOBAL STATUS needs no privilege
// and reads the same on MySQL and MariaDB.
func (mysqlDialect) running() string { return "SHOW GLOBAL STATUS LIKE 'Threads_running'" }

// The queries that describe a table for the setup check (shape.go).

func (mysqlDialect) identQuote() string { return "`" }

func (mysqlDialect) alterType() string { return "ALTER TABLE %s MODIFY %s %s" }

func (mysqlDialect) shapeColumns(table string) Query {
	return Query{SQL: "SELECT COLUMN_NAME, COLUMN_TYPE, COALESCE(CHARACTER_SET_NAME, ''), IS_NULLABLE = 'YES' " +
		"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", Args: []any{table}}
}

func (mysqlDialect) shapeCollation(table string) Query {
	return Query{SQL: "SELECT COALESCE(TABLE_COLLATION, '') FROM information_schema.TABLES " +
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?", Args: []any{table}}
}

func (mysqlDialect) shapeIndexes(table string) Query {
	return Query{SQL: "SELECT INDEX_NAME, NON_UNIQUE = 0, INDEX_NAME = 'PRIMARY', COLUMN_NAME, SEQ_IN_INDEX " +
		"FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? " +
		"ORDER BY INDEX_NAME, SEQ_IN_INDEX", Args: []any{table}}
}

// columnsOf is Columns for n tables at once, the table's name first.
func (mysqlDialect) columnsOf(n int) string {
	return "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, COLUMN_KEY = 'PRI', COALESCE(GENERATION_EXPRESSION, '') <> '' FROM information_schema.COLUMNS " +
		"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (" + placeholders(n) + ") ORDER BY TABLE_NAME, ORDINAL_POSITION"
}

func (mysqlDialect) listTables() string {
	return "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
}

// Server-side range checksums (sumranges.go): each row's MD5 over the
// salt and its columns joined by '#', every column that may hold a '#'
// (text, bytes, BIT, ENUM, JSON: all but numbers and times) after its
// length, so that no two rows of other values join alike, and a flag per
// column for NULL; the first 64 bits of the MD5 are XORed over the
// range, an order-free sum that leaves the rows on the server, as
// pt-table-checksum's BIT_XOR of CRC32 does (which is 32 bits and takes
// no lengths). A subquery or a second half of the digest cost a MariaDB
// 10.11 here 30 to 60% more time a row for little: a difference is
// missed with a chance of 2^-64 a range.

func (mysqlDialect) sumAlgorithm() string { return SumMySQLMD5 }

func (d mysqlDialect) rowSum(cols, types []string) string {
	var b, nulls strings.Builder
	b.WriteString("CONV(LEFT(MD5(CONCAT_WS('#', ?")
	for i, c := range cols {
		q := d.Quote(c)
		typ := ""
		if i < len(types) {
			typ = strings.ToLower(types[i])
		}
		if !mysqlPlainText(typ) {
			b.WriteString(", LENGTH(" + q + ")")
		}
		b.WriteString(", " + q)
		nulls.WriteString(", ISNULL(" + q + ")")
	}
	b.WriteString(", CONCAT(''" + nulls.String() + "))), 16), 16, 10)")
	return b.String()
}

// mysqlPlainText reports whether a column of type typ reads as text with
// no '#' in it: a number or a time.
func mysqlPlainText(typ string) bool {
	for _, p := range []string{"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "numeric", "date", "datetime", "timestamp", "time", "year"} {
		if strings.HasPrefix(typ, p) {
			return true
		}
	}
	return false
}

// exactFloats: a FLOAT reads as text of six digits in CONCAT_WS.
func (mysqlDialect) exactFloats() bool { return false }

func (mysqlDialect) sumSelect(h string) string {
	return "COUNT(*), COALESCE(BIT_XOR(" + h + "), 0)"
}
