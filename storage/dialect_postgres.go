package storage

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/rules"
)

// pgDialect is PostgreSQL (and what speaks its protocol and SQL closely
// enough: KingbaseES, openGauss and HighGo in PostgreSQL mode, see the
// README). Sessions run in UTC with ISO dates and exact float output
// (OpenPostgres); zone is the time zone the database's own sessions
// default to, in which a TIMESTAMP WITHOUT TIME ZONE column set from
// now() holds its wall time.
type pgDialect struct {
	zone string
	// bitXor: the server has bit_xor(bigint) (PostgreSQL 14 and later),
	// which its range checksum needs.
	bitXor bool
}

var _ dialect = pgDialect{}

// pgSchema is the schema whose tables gapsync reads and writes: the
// first of the connection's search_path that exists.
const pgSchema = "to_regnamespace(current_schema())"

func (pgDialect) Name() string { return "postgres" }

func (pgDialect) Quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// pgStamp is the exact text form gapsync reads a timestamp in: the form
// MySQL's DATETIME(6) has, which sorts as text in time order.
const pgStamp = "'YYYY-MM-DD HH24:MI:SS.US'"

// SelectExpr reads every value as its text output, which for each of
// PostgreSQL's types is exact (floats in the shortest form that reads back
// bit-exact), except bytea, read as its bytes. Timestamps are read in a
// fixed form with six fraction digits (timestamptz in UTC), so that they
// sort as text and match MySQL's form; infinities and years before 1
// keep PostgreSQL's own text. No alias: ORDER BY must see the column,
// not its text.
func (d pgDialect) SelectExpr(col, typ string) string {
	q := d.Quote(col)
	t := strings.ToLower(typ)
	switch {
	case t == "bytea":
		return q
	case strings.HasPrefix(t, "timestamp") && !strings.HasSuffix(t, "[]"):
		v := q
		if strings.Contains(t, "with time zone") {
			v = q + " AT TIME ZONE 'UTC'"
		}
		return "CASE WHEN isfinite(" + q + ") AND " + v + " >= '0001-01-01' THEN to_char(" + v + ", " + pgStamp + ") ELSE " + q + "::text END"
	}
	return q + "::text"
}

func (d pgDialect) Upsert(table string, cols, key []string, rows int) string {
	return upsert(d, table, cols, key, rows)
}

func (d pgDialect) onConflict(key, update []string) string { return excludedConflict(d, key, update) }

func (pgDialect) Columns() string {
	return "SELECT a.attname, format_type(a.atttypid, a.atttypmod), COALESCE(a.attnum = ANY(ix.indkey), false), a.attgenerated <> '' " +
		"FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid " +
		"LEFT JOIN pg_index ix ON ix.indrelid = c.oid AND ix.indisprimary " +
		"WHERE c.relname = ? AND c.relnamespace = " + pgSchema + " AND c.relkind IN ('r', 'p') " +
		"AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum"
}

func (pgDialect) placeholderLimit() int { return 65535 }

func (pgDialect) lockRows() string { return " FOR UPDATE" }

func (pgDialect) rowValueList() string { return "" }

func (d pgDialect) createIndex(name, table, cols string) string {
	return "CREATE INDEX IF NOT EXISTS " + d.Quote(name) + " ON " + d.Quote(table) + " (" + cols + ")"
}

var pgTypes = strings.NewReplacer(" datetime(6)", " timestamp(6)", " longblob", " bytea", " longtext", " text",
	" DATETIME(6)", " timestamp(6)", " LONGBLOB", " bytea", " LONGTEXT", " text")

// tableDDL turns the MySQL column types of the metadata models into
// PostgreSQL's. Names are quoted, so a type word is never a name.
func (pgDialect) tableDDL(create string) string { return pgTypes.Replace(create) }

var pgInt = regexp.MustCompile(`^(smallint|integer|bigint|int2|int4|int8)$`)

func (pgDialect) cursorKind(typ string) (cursorKind, bool) {
	t := strings.ToLower(strings.TrimSpace(typ))
	switch {
	case pgInt.MatchString(t):
		return kindInteger, true
	case strings.HasPrefix(t, "timestamp") && !strings.HasSuffix(t, "[]"):
		return kindTime, true
	}
	return 0, false
}

func pgLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// clock: a TIMESTAMP WITH TIME ZONE is an instant (read and compared in
// UTC here); a TIMESTAMP WITHOUT TIME ZONE holds the wall time of the
// zone its writers' sessions run in, the database's default.
func (d pgDialect) clock(cursorType string, utc bool) string {
	zone := d.zone
	if utc || zone == "" || strings.Contains(strings.ToLower(cursorType), "with time zone") {
		zone = "UTC"
	}
	return "SELECT to_char(clock_timestamp() AT TIME ZONE " + pgLiteral(zone) + ", " + pgStamp + ")"
}

// openWriters reads pg_stat_activity: a backend with a transaction id
// has written. Its xact_start is exact to the microsecond. A role that is
// neither superuser nor a member of pg_read_all_stats sees other roles'
// sessions without their transaction ids: the query then answers -2, and
// the window rests on the lag (logged once).
func (pgDialect) openWriters() string {
	return "SELECT CASE WHEN NOT (pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') OR " +
		"(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)) THEN -2 ELSE " +
		"COALESCE((SELECT MAX((EXTRACT(EPOCH FROM (clock_timestamp() - xact_start)) * 1000000)::bigint) FROM pg_stat_activity " +
		"WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL " +
		"AND xact_start > clock_timestamp() - make_interval(secs => CAST(? AS bigint))), -1) END, true"
}

// writersCached: pg_stat_activity outside a transaction is read afresh by
// every statement.
func (pgDialect) writersCached() string { return "" }

func (pgDialect) writerReport() (string, string) { return "", "" }

func (pgDialect) parseWriters(string) ([]openTrx, error) { return nil, nil }

func (pgDialect) clockInWriteTx() bool { return false }

// effects: an INSERT or UPDATE trigger (tgtype bits 4 and 16) that is not
// gapsync's own, which includes the usual BEFORE UPDATE trigger that sets
// updated_at; PostgreSQL has no ON UPDATE clause; generated columns from
// pg_attribute.
func (pgDialect) effects(table string, own []string) Query {
	return Query{SQL: "SELECT (SELECT COUNT(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid " +
		"WHERE c.relname = ? AND c.relnamespace = " + pgSchema + " AND NOT t.tgisinternal AND (t.tgtype & 20) <> 0 " +
		"AND t.tgname NOT IN (" + marks(len(own)) + ")), 0, " +
		"(SELECT COUNT(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname = ? AND c.relnamespace = " + pgSchema +
		" AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated <> '')",
		Args: append(append([]any{table}, strAnys(own)...), table)}
}

func (pgDialect) acquireLease(ttl time.Duration) string {
	now := "to_char(clock_timestamp() AT TIME ZONE 'UTC', " + pgStamp + ")"
	later := "to_char(clock_timestamp() AT TIME ZONE 'UTC' + interval '" + strconv.FormatInt(ttl.Microseconds(), 10) + " microseconds', " + pgStamp + ")"
	return "INSERT INTO sync_lease (name, holder, expires_at) VALUES (?, ?, " + later + ") " +
		"ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at " +
		"WHERE sync_lease.expires_at < " + now + " OR sync_lease.holder = excluded.holder"
}

// widenLog: the PostgreSQL tables were made with the wide form.
func (pgDialect) widenLog() (read, alter string) { return "", "" }

func (pgDialect) flavorQuery() string { return "" }

func (pgDialect) flavor(string) string { return flavorPG }

// triggers: the stored form compared is the trigger function's body.
func (pgDialect) triggers() string {
	return "SELECT t.tgname::text, p.prosrc FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid " +
		"WHERE c.relname = ? AND c.relnamespace = " + pgSchema + " AND t.tgname IN (?, ?)"
}

func (d pgDialect) dropTrigger(name, table string) string {
	return "DROP TRIGGER IF EXISTS " + d.Quote(name) + " ON " + d.Quote(table)
}

// tombstoneSQL: a PL/pgSQL function, named like the trigger, inserts the
// tombstone; the install replaces function and trigger in one transaction
// (PostgreSQL's DDL is transactional). The deletion time has the cursor's
// own type and zone: TIMESTAMPTZ for TIMESTAMPTZ, the database's default
// zone's wall time for TIMESTAMP, and UTC for an integer cursor's own
// window.
func (d pgDialect) tombstoneSQL(t gapsync.Table, cols []column, kind cursorKind) ([]string, triggerDef) {
	s := tombstoneParts(d, t, cols, kind)
	zone := d.zone
	if zone == "" || kind == kindInteger {
		zone = "UTC"
	}
	atType, now := "timestamp(6) without time zone", "clock_timestamp() AT TIME ZONE "+pgLiteral(zone)
	if kind == kindTime && strings.Contains(strings.ToLower(s.cur.Type), "with time zone") {
		atType, now = "timestamp(6) with time zone", "clock_timestamp()"
	}
	setup := []string{
		"CREATE TABLE IF NOT EXISTS " + s.qtt + " (" + strings.Join(s.defs, ", ") + ", " + s.at + " " + atType + " NOT NULL" + s.extraDef +
			", PRIMARY KEY (" + s.keyList + "))",
		"CREATE INDEX IF NOT EXISTS " + d.Quote(s.tt+"_at") + " ON " + s.qtt + " (" + s.at + ")",
	}
	body := "BEGIN " + s.insert(now) + " ON CONFLICT (" + s.keyList + ") DO UPDATE SET " + s.excludedSet() + "; RETURN NULL;" + tombstoneMark + " END;"
	fn := d.Quote(s.def.names[0])
	s.def.fn = "FUNCTION " + fn + "() RETURNS trigger LANGUAGE plpgsql AS $gapsync$" + body + "$gapsync$"
	for i, n := range s.def.names {
		s.def.stored[i] = body
		s.def.create[i] = "TRIGGER " + d.Quote(n) + " AFTER DELETE ON " + d.Quote(t.Name) + " FOR EACH ROW EXECUTE FUNCTION " + fn + "()"
	}
	return setup, s.def
}

func (pgDialect) maxIdentifier() int { return 63 }

func (pgDialect) identQuote() string { return `"` }
func (pgDialect) alterType() string  { return "ALTER TABLE %s ALTER COLUMN %s TYPE %s" }

func (pgDialect) shapeColumns(table string) Query {
	return Query{SQL: "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), '', NOT a.attnotnull " +
		"FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE c.relname = ? AND c.relnamespace = " + pgSchema +
		" AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", Args: []any{table}}
}

// shapeCollation: a PostgreSQL database has one encoding for all text.
func (pgDialect) shapeCollation(string) Query { return Query{} }

func (pgDialect) shapeIndexes(table string) Query {
	return Query{SQL: "SELECT CASE WHEN ix.indisprimary THEN 'PRIMARY' ELSE i.relname::text END, ix.indisunique, ix.indisprimary, a.attname::text, k.n " +
		"FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid " +
		"CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n) " +
		"JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum " +
		"WHERE t.relname = ? AND t.relnamespace = " + pgSchema + " ORDER BY 1, 5", Args: []any{table}}
}

// writeValue: every value goes as text, which PostgreSQL parses exactly
// for every type (pgx sends a string in text format), except into bytea,
// which takes bytes. MySQL's zero dates have no PostgreSQL value.
func (pgDialect) writeValue(s colSpec, v any) (any, error) {
	if s.typ == "bytea" {
		switch x := v.(type) {
		case []byte:
			return x, nil
		case string:
			return []byte(x), nil
		}
		return nil, fmt.Errorf("a %T is not bytes", v)
	}
	text, ok := textOf(v)
	if !ok {
		return nil, fmt.Errorf("a %T has no text form", v)
	}
	if s.time && looksLikeZeroDate(text) {
		return nil, fmt.Errorf("MySQL's zero date %q has no PostgreSQL value; store NULL for it on the MySQL side, or map the column to text", text)
	}
	if s.time && isTimestamptzLower(s.typ) {
		return utcText(text), nil
	}
	if _, ok := v.(string); ok {
		return v, nil // as it is: no new interface value a value
	}
	return text, nil
}

// looksLikeZeroDate: a date with a zero year, month or day, as MySQL
// allows outside strict mode.
func looksLikeZeroDate(s string) bool {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	return s[:4] == "0000" || s[5:7] == "00" || s[8:10] == "00"
}

func (pgDialect) defaultTimePrecision() int { return 6 }

// valueClass: everything is read as text but bytea (SelectExpr).
func (pgDialect) valueClass(typ string) valueClass {
	if typ == "bytea" {
		return classPGBytes
	}
	return classPGText
}

// writerSlack: xact_start is exact, and a row a transaction stamps with
// now() carries the transaction's start.
func (pgDialect) writerSlack() time.Duration { return 0 }

// defaultDecimalScale: a NUMERIC without a scale keeps any.
func (pgDialect) defaultDecimalScale() int { return -1 }

func (pgDialect) insertValuesWord() string { return "OVERRIDING SYSTEM VALUE VALUES" }

// arrayUpsert is PostgreSQL's upsert of many rows in one statement with
// one parameter a column: an array of the column's values, unnested into
// rows. The server plans one short statement, the same text whatever the
// number of rows (so pgx's statement cache keeps one entry a table),
// instead of a VALUES list of a parameter a value, which it takes about
// twice as long to apply. The arrays are text[] (bytea[] for bytea), each
// element cast to the column's type without its length, precision or
// fields: the INSERT then applies those as it does to a parameter, so a
// value too long for a varchar(n) or char(n) is refused, not cut. false:
// a column's type is not known, or a value is not in writeValue's form;
// the caller then writes a VALUES list. OVERRIDING SYSTEM VALUE as in
// insertValuesWord.
func (d pgDialect) arrayUpsert(table string, cols, types, key []string, rows []batch.Row) (Query, bool) {
	args := make([]any, len(cols))
	sel, src, names := make([]string, len(cols)), make([]string, len(cols)), make([]string, len(cols))
	for i, typ := range types {
		v := d.Quote("v" + strconv.Itoa(i+1))
		names[i] = v
		switch base := pgBaseType(typ); base {
		case "":
			return Query{}, false
		case "bytea":
			vals := make([][]byte, len(rows))
			for j, r := range rows {
				switch x := r.Values[i].(type) {
				case nil:
				case []byte:
					vals[j] = x
				default:
					return Query{}, false
				}
			}
			args[i], sel[i], src[i] = vals, v, "?::bytea[]"
		default:
			vals := make([]*string, len(rows))
			for j, r := range rows {
				switch x := r.Values[i].(type) {
				case nil:
				case string:
					vals[j] = &x
				default:
					return Query{}, false
				}
			}
			args[i], sel[i], src[i] = vals, "CAST("+v+" AS "+base+")", "?::text[]"
		}
	}
	var b strings.Builder
	b.WriteString("INSERT INTO " + d.Quote(table) + " (" + quotedList(d, cols))
	b.WriteString(") OVERRIDING SYSTEM VALUE SELECT " + strings.Join(sel, ",") + " FROM unnest(" + strings.Join(src, ",") + ") AS u(" + strings.Join(names, ",") + ") ")
	b.WriteString(d.onConflict(key, nonKey(cols, key)))
	return Query{SQL: b.String(), Args: args}, true
}

var pgTypmod = regexp.MustCompile(`\([0-9, ]*\)`)

// pgBaseType is a declared type (format_type's text) without its typmod,
// in a form that keeps none in a cast: character(n) is bpchar and bit(n)
// varbit, since the bare keywords mean length 1; interval loses its fields
// too. "" for an unknown type.
func pgBaseType(typ string) string {
	t := strings.TrimSpace(typ)
	if t == "" {
		return ""
	}
	if strings.Contains(t, `"`) {
		return t // a quoted name: a user's type, without a typmod
	}
	arr := ""
	for strings.HasSuffix(t, "[]") {
		t, arr = strings.TrimSuffix(t, "[]"), arr+"[]"
	}
	t = strings.Join(strings.Fields(pgTypmod.ReplaceAllString(t, "")), " ")
	switch {
	case t == "character", t == "char":
		t = "bpchar"
	case t == "bit":
		t = "varbit"
	case strings.HasPrefix(t, "interval"):
		t = "interval"
	}
	return t + arr
}

// analyze: until a table is analyzed the planner takes a lookup of many
// keys by table name alone (see analyze.go).
func (d pgDialect) analyze(table string) string { return "ANALYZE " + d.Quote(table) }

// param: a timestamptz is read and sent as UTC wall time (SelectExpr), and
// the session runs in the database's own zone, so a value compared with
// one is read as UTC.
func (pgDialect) param(typ string) string {
	if isTimestamptz(typ) {
		return "(CAST(? AS timestamp) AT TIME ZONE 'UTC')"
	}
	return "?"
}

func isTimestamptz(typ string) bool { return isTimestamptzLower(strings.ToLower(typ)) }

// isTimestamptzLower is isTimestamptz of a type already in lower case
// (colSpec.typ), without a new string a value.
func isTimestamptzLower(t string) bool {
	return strings.HasPrefix(t, "timestamp") && strings.Contains(t, "with time zone") && !strings.HasSuffix(t, "[]")
}

var pgZoneSuffix = regexp.MustCompile(`(?:[+-]\d\d(?::?\d\d){0,2}|Z)(?: BC)?$`)

// utcText marks a timestamptz's text without a zone as UTC (the form
// SelectExpr reads it in, and MySQL's TIMESTAMP in its UTC session).
func utcText(s string) string {
	if s == "" || !strings.ContainsAny(s[:1], "0123456789") || pgZoneSuffix.MatchString(s) {
		return s // infinity, or a zone of its own
	}
	if strings.HasSuffix(s, " BC") {
		return strings.TrimSuffix(s, " BC") + "+00 BC"
	}
	return s + "+00"
}

func (d pgDialect) liveColumns(table string) (Query, bool) {
	return Query{SQL: "SELECT attname FROM pg_attribute WHERE attrelid = CAST(? AS regclass) AND attnum > 0 AND NOT attisdropped",
		Args: []any{d.Quote(table)}}, true
}

// verifyClass names format_type's spellings (and the short ones).
func (pgDialect) verifyClass(typ string) string {
	t := strings.ToLower(typ)
	switch {
	case strings.HasSuffix(t, "[]"):
		return ""
	case strings.HasPrefix(t, "timestamp"), strings.HasPrefix(t, "time"), t == "date":
		return rules.ClassTime
	case t == "real", t == "float4":
		return rules.ClassFloat32
	case t == "double precision", t == "float8":
		return rules.ClassFloat64
	case t == "boolean", t == "bool":
		return rules.ClassBool
	}
	return ""
}

// running counts the client backends running a statement, in every
// database of the server. A role without pg_read_all_stats sees the state
// of its own backends only, and so counts those alone.
func (pgDialect) running() string {
	return "SELECT 'active_backends', COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend'"
}

// columnsOf is Columns for n tables at once, the table's name first.
func (pgDialect) columnsOf(n int) string {
	return "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), COALESCE(a.attnum = ANY(ix.indkey), false), a.attgenerated <> '' " +
		"FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid " +
		"LEFT JOIN pg_index ix ON ix.indrelid = c.oid AND ix.indisprimary " +
		"WHERE c.relname IN (" + placeholders(n) + ") AND c.relnamespace = " + pgSchema + " AND c.relkind IN ('r', 'p') " +
		"AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum"
}

func (pgDialect) listTables() string {
	return "SELECT c.relname FROM pg_class c WHERE c.relnamespace = " + pgSchema + " AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
}

// copyIn is the statement that loads rows of cols into table from the
// client in COPY's text format (copyRow). Each field goes through its
// column's input function with the column's typmod, as a text parameter
// does, so values stay exact and a value too long for a varchar(n),
// char(n) or bit(n) is refused. COPY writes the identity values it is
// given, like OVERRIDING SYSTEM VALUE.
func (d pgDialect) copyIn(table string, cols []string) string {
	return "COPY " + d.Quote(table) + " (" + quotedList(d, cols) + ") FROM STDIN"
}

// copyRow appends one row of values in writeValue's form to dst in COPY's
// text format: fields split by tabs, \N for NULL, backslash, tab, newline
// and carriage return escaped, bytea as \x and hex digits. false: a value
// of another form (the caller upserts instead).
func (pgDialect) copyRow(dst []byte, vals []any) ([]byte, bool) {
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, '\t')
		}
		switch x := v.(type) {
		case nil:
			dst = append(dst, `\N`...)
		case []byte:
			dst = append(dst, `\\x`...)
			dst = hex.AppendEncode(dst, x)
		case string:
			// One pass: the runs between the bytes to escape are copied
			// whole.
			start := 0
			for j := 0; j < len(x); j++ {
				if e := pgCopyEscape[x[j]]; e != 0 {
					dst = append(dst, x[start:j]...)
					dst = append(dst, '\\', e)
					start = j + 1
				}
			}
			dst = append(dst, x[start:]...)
		default:
			return dst, false
		}
	}
	return append(dst, '\n'), true
}

// pgCopyEscape is, for each byte COPY's text format escapes, the letter
// that follows the backslash; 0 for every other byte.
var pgCopyEscape = [256]byte{'\\': '\\', '\t': 't', '\n': 'n', '\r': 'r'}

// Server-side range checksums (sumranges.go), PostgreSQL's own: each
// row's MD5 over the salt and its columns in their binary send form
// (what a client reading the binary protocol gets: int8send,
// float8send, numeric_send, timestamptz_send, …), not their text, so
// that nothing depends on a session's extra_float_digits, DateStyle,
// IntervalStyle, TimeZone or bytea_output: a float to its last bit, a
// timestamptz as its microseconds since 2000 in UTC, a numeric as its
// digits and scale. A column whose send form has a fixed width (an
// integer, a float, a time, a uuid, …) goes as it is; every other (text,
// bytea, numeric, json, arrays, ranges, and a type this does not know,
// which goes as its text) goes after its length in bytes, so that no two
// rows of other values join alike; a bit a column, in words of 64 after
// the columns, flags NULL. The first 64 bits of the MD5, as a bigint,
// are XORed over the range (bit_xor, PostgreSQL 14 and later: a server
// without it has no checksum and its rows are hashed instead). An
// array's send form carries its element type's oid, which differs
// between two databases for a type of their own (an enum): it is zeroed.

// SumPostgresMD5 names PostgreSQL's server-side range checksum
// (SumRanges); it never compares with MySQL's.
const SumPostgresMD5 = "postgres-md5-xor"

func (d pgDialect) sumAlgorithm() string {
	if !d.bitXor {
		return ""
	}
	return SumPostgresMD5
}

// exactFloats: a float is hashed as its bits.
func (pgDialect) exactFloats() bool { return true }

// pgFixedSend are the send functions of the types whose binary form has
// one width, by their base type (pgBaseType).
var pgFixedSend = map[string]string{
	"smallint": "int2send", "integer": "int4send", "bigint": "int8send",
	"real": "float4send", "double precision": "float8send", "boolean": "boolsend",
	"date": "date_send", "timestamp without time zone": "timestamp_send", "timestamp with time zone": "timestamptz_send",
	"time without time zone": "time_send", "time with time zone": "timetz_send", "interval": "interval_send",
	"uuid": "uuid_send", "money": "cash_send", "macaddr": "macaddr_send", "macaddr8": "macaddr8_send",
	"point": "point_send", "oid": "oidsend",
}

// pgVarSend are those of the types whose binary form varies in length
// (a column of these goes after its length).
var pgVarSend = map[string]string{
	"numeric": "numeric_send", "text": "textsend", "character varying": "varcharsend", "bpchar": "bpcharsend",
	"json": "json_send", "jsonb": "jsonb_send", "xml": "xml_send", "bit varying": "varbit_send",
	"varbit": "varbit_send", "inet": "inet_send", "cidr": "cidr_send", "name": "namesend",
	"int4range": "range_send", "int8range": "range_send", "numrange": "range_send",
	"tsrange": "range_send", "tstzrange": "range_send", "daterange": "range_send",
}

// pgSumValue is the bytes of column q (of declared type typ) that a row
// sum hashes, and whether they have one width whatever the value.
func pgSumValue(q, typ string) (expr string, fixed bool) {
	base := pgBaseType(strings.ToLower(typ))
	switch {
	case base == "bytea":
		return q, false
	case strings.HasSuffix(base, "[]"):
		// The header's third word is the element type's oid.
		return "overlay(array_send(" + q + ") placing '\\x00000000'::bytea from 9 for 4)", false
	case pgFixedSend[base] != "":
		return pgFixedSend[base] + "(" + q + ")", true
	case pgVarSend[base] != "":
		return pgVarSend[base] + "(" + q + ")", false
	}
	return "textsend(" + q + "::text)", false // a type of the application's own: an enum, a domain
}

func (d pgDialect) rowSum(cols, types []string) string {
	var b strings.Builder
	b.WriteString("('x' || md5(decode(?, 'hex')")
	for i, c := range cols {
		q := d.Quote(c)
		typ := ""
		if i < len(types) {
			typ = types[i]
		}
		v, fixed := pgSumValue(q, typ)
		if fixed {
			b.WriteString(" || COALESCE(" + v + ", ''::bytea)")
		} else {
			b.WriteString(" || COALESCE(int4send(octet_length(" + v + ")) || " + v + ", ''::bytea)")
		}
	}
	for w := 0; w < len(cols); w += 64 {
		b.WriteString(" || int8send(")
		for i := w; i < min(w+64, len(cols)); i++ {
			if i > w {
				b.WriteString(" | ")
			}
			b.WriteString("((" + d.Quote(cols[i]) + " IS NULL)::int::int8 << " + strconv.Itoa(i-w) + ")")
		}
		b.WriteString(")")
	}
	b.WriteString("))::bit(64)::bigint") // the first 64 of the MD5's 128 bits
	return b.String()
}

// sumSelect: bit_xor gives a signed bigint; SumRanges reads its bits as
// unsigned (sum64).
func (pgDialect) sumSelect(h string) string {
	return "COUNT(*), COALESCE(bit_xor(" + h + "), 0)"
}

// pgHasBitXor asks whether the server has bit_xor(bigint), which
// PostgreSQL has from 14 on (a server speaking its protocol may report
// another version).
const pgHasBitXor = "EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace " +
	"WHERE n.nspname = 'pg_catalog' AND p.proname = 'bit_xor' AND p.pronargs = 1 AND p.proargtypes[0] = 'pg_catalog.int8'::pg_catalog.regtype)"
