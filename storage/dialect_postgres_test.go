package storage

import (
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// The PostgreSQL dialect's SQL, checked without a server.
func TestPostgresDialectSQL(t *testing.T) {
	is := is.New(t)
	d := pgDialect{zone: "Asia/Shanghai"}
	is.Equal(d.Quote(`a"b`), `"a""b"`)
	is.Equal(d.Upsert("t", []string{"id", "a"}, []string{"id"}, 2),
		`INSERT INTO "t" ("id","a") OVERRIDING SYSTEM VALUE VALUES (?,?),(?,?) ON CONFLICT ("id") DO UPDATE SET "a"=excluded."a"`)
	is.Equal(d.Upsert("t", []string{"a", "b"}, []string{"a", "b"}, 1), `INSERT INTO "t" ("a","b") OVERRIDING SYSTEM VALUE VALUES (?,?) ON CONFLICT ("a","b") DO NOTHING`)
	// Exact reads: text for every type, bytes for bytea, a fixed form for
	// timestamps (in UTC for timestamptz), no alias that ORDER BY could take.
	is.Equal(d.SelectExpr("n", "numeric(10,2)"), `"n"::text`)
	is.Equal(d.SelectExpr("b", "bytea"), `"b"`)
	is.Equal(d.SelectExpr("u", "timestamp(6) without time zone"),
		`CASE WHEN isfinite("u") AND "u" >= '0001-01-01' THEN to_char("u", 'YYYY-MM-DD HH24:MI:SS.US') ELSE "u"::text END`)
	is.Equal(d.SelectExpr("z", "timestamp with time zone"),
		`CASE WHEN isfinite("z") AND "z" AT TIME ZONE 'UTC' >= '0001-01-01' THEN to_char("z" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') ELSE "z"::text END`)
	is.Equal(d.SelectExpr("a", "timestamp without time zone[]"), `"a"::text`)
	q := selectPage(d, pageQuery{table: "t", cols: []string{"id", "u"}, types: []string{"bigint", "timestamp(6) without time zone"}, cursor: "u", key: []string{"id"}, from: "a", to: "b", limit: 5})
	is.True(strings.HasSuffix(q.SQL, `FROM "t" WHERE "u" >= ? AND "u" < ? ORDER BY "t"."u","t"."id" LIMIT 5`))
	// The clock: a plain timestamp in the database's zone, timestamptz and deletions in UTC.
	is.Equal(d.clock("timestamp(6) without time zone", false), `SELECT to_char(clock_timestamp() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD HH24:MI:SS.US')`)
	is.Equal(d.clock("timestamp(6) with time zone", false), `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`)
	is.Equal(d.clock("timestamp", true), `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`)
	is.Equal(pgDialect{zone: "x'y"}.clock("timestamp", false), `SELECT to_char(clock_timestamp() AT TIME ZONE 'x''y', 'YYYY-MM-DD HH24:MI:SS.US')`)
	is.True(strings.Contains(d.acquireLease(1500*time.Millisecond), "interval '1500000 microseconds'"))
	is.True(strings.Contains(d.openWriters(), "backend_xid IS NOT NULL"))
	is.Equal(d.createIndex("i", "t", `"a", "b"`), `CREATE INDEX IF NOT EXISTS "i" ON "t" ("a", "b")`)
	// The live columns from the catalogue, never a cached SELECT *.
	lq, byRows := d.liveColumns(`we"ird`)
	is.True(byRows)
	is.Equal(lq.SQL, `SELECT attname FROM pg_attribute WHERE attrelid = CAST(? AS regclass) AND attnum > 0 AND NOT attisdropped`)
	is.Equal(lq.Args, []any{`"we""ird"`})
	is.Equal(d.tableDDL(`CREATE TABLE "x" ("a" datetime(6) NOT NULL, "b" longblob, "c" longtext NOT NULL, "datetime(6)" text)`),
		`CREATE TABLE "x" ("a" timestamp(6) NOT NULL, "b" bytea, "c" text NOT NULL, "datetime(6)" text)`)
	for typ, want := range map[string]cursorKind{"bigint": kindInteger, "integer": kindInteger, "smallint": kindInteger,
		"timestamp(6) without time zone": kindTime, "timestamp with time zone": kindTime} {
		k, ok := d.cursorKind(typ)
		is.True(ok)
		is.Equal(k, want)
	}
	for _, typ := range []string{"numeric", "text", "date", "timestamp without time zone[]", "integer[]"} {
		_, ok := d.cursorKind(typ)
		is.True(!ok) // not a cursor
	}
}

// Tombstones on PostgreSQL: a PL/pgSQL function and a trigger that calls
// it, replaced in one transaction; the stored form is the function body.
func TestPostgresTombstoneSQL(t *testing.T) {
	is := is.New(t)
	d := pgDialect{zone: "UTC"}
	cols := []column{{Name: "id", Type: "bigint", Key: true}, {Name: "updated_at", Type: "timestamp(6) with time zone"}}
	tb := gapsync.Table{Name: "gone", Key: []string{"id"}, Cursor: "updated_at"}
	setup, def := d.tombstoneSQL(tb, cols, kindTime)
	is.Equal(setup[0], `CREATE TABLE IF NOT EXISTS "gst_gone" ("id" bigint NOT NULL, "deleted_at" timestamp(6) with time zone NOT NULL, PRIMARY KEY ("id"))`)
	is.Equal(def.stored[0], `BEGIN INSERT INTO "gst_gone" ("id", "deleted_at") VALUES (OLD."id", clock_timestamp()) ON CONFLICT ("id") DO UPDATE SET "deleted_at" = excluded."deleted_at"; RETURN NULL; END;`)
	is.Equal(def.create[0], `TRIGGER "gst_gone_ad" AFTER DELETE ON "gone" FOR EACH ROW EXECUTE FUNCTION "gst_gone_ad"()`)
	is.Equal(def.fn, `FUNCTION "gst_gone_ad"() RETURNS trigger LANGUAGE plpgsql AS $gapsync$`+def.stored[0]+`$gapsync$`)
	is.Equal(triggerSteps(d, flavorPG, def, map[string]string{"gst_gone_ad": def.stored[0]}), []string(nil)) // current: left alone
	is.Equal(triggerSteps(d, flavorPG, def, map[string]string{"gst_gone_ad": "old", "gst_gone_ad2": "x"}),
		[]string{"CREATE OR REPLACE " + def.fn, `DROP TRIGGER IF EXISTS "gst_gone_ad" ON "gone"`, "CREATE " + def.create[0], `DROP TRIGGER IF EXISTS "gst_gone_ad2" ON "gone"`})
	// An integer cursor keeps the row's last version; its deletions are stamped in UTC.
	cols = []column{{Name: "id", Type: "integer", Key: true}, {Name: "ver", Type: "bigint"}}
	_, def = pgDialect{zone: "Asia/Shanghai"}.tombstoneSQL(gapsync.Table{Name: "v", Key: []string{"id"}, Cursor: "ver"}, cols, kindInteger)
	is.True(strings.Contains(def.stored[0], `VALUES (OLD."id", clock_timestamp() AT TIME ZONE 'UTC', OLD."ver")`))
	is.True(strings.Contains(def.stored[0], `"deleted_cursor" = excluded."deleted_cursor"`))
}

// ? parameters are numbered for PostgreSQL outside strings, names,
// dollar-quoted bodies and comments.
func TestNumberParams(t *testing.T) {
	is := is.New(t)
	for in, want := range map[string]string{
		"SELECT ? , ?": "SELECT $1 , $2",
		`SELECT '?', "a?b", ? FROM t WHERE x = ?`: `SELECT '?', "a?b", $1 FROM t WHERE x = $2`,
		`SELECT 'it''s ?', ?`:                     `SELECT 'it''s ?', $1`,
		`SELECT E'\'?', ?`:                        `SELECT E'\'?', $1`,
		"SELECT ? -- why?\n, ?":                   "SELECT $1 -- why?\n, $2",
		"SELECT /* ? */ ?":                        "SELECT /* ? */ $1",
		"DO $x$ BEGIN ? END $x$; SELECT ?":        "DO $x$ BEGIN ? END $x$; SELECT $1",
		"SELECT $1":                               "SELECT $1",
		"no params":                               "no params",
		`SELECT "unterminated ?`:                  `SELECT "unterminated ?`,
	} {
		is.Equal(numberParams(in), want)
	}
}

// A timestamptz is compared and written as the UTC wall time gapsync
// reads it in, whatever the session's zone.
func TestPostgresTimestamptzAsUTC(t *testing.T) {
	is := is.New(t)
	d := pgDialect{zone: "Asia/Shanghai"}
	is.Equal(d.param("timestamp(6) with time zone"), "(CAST(? AS timestamp) AT TIME ZONE 'UTC')")
	is.Equal(d.param("timestamp(6) without time zone"), "?")
	q := selectPage(d, pageQuery{table: "t", cols: []string{"id", "z"}, types: []string{"bigint", "timestamp(6) with time zone"},
		cursor: "z", key: []string{"id"}, from: "a", to: "b", after: []any{"c", 1}, limit: 5})
	is.True(strings.Contains(q.SQL, `WHERE "z" >= (CAST(? AS timestamp) AT TIME ZONE 'UTC') AND "z" < (CAST(? AS timestamp) AT TIME ZONE 'UTC')`))
	is.True(strings.Contains(q.SQL, `("z" > (CAST(? AS timestamp) AT TIME ZONE 'UTC') OR ("z" = (CAST(? AS timestamp) AT TIME ZONE 'UTC') AND ("id" > ?)))`))
	s := specOf(d, "timestamp(6) with time zone")
	for in, want := range map[string]string{
		"2026-01-01 00:00:00.123456": "2026-01-01 00:00:00.123456+00",
		"2026-01-01 08:00:00+08":     "2026-01-01 08:00:00+08",
		"2026-01-01 08:00:00+05:30":  "2026-01-01 08:00:00+05:30",
		"4713-01-01 00:00:00 BC":     "4713-01-01 00:00:00+00 BC",
		"4713-01-01 00:00:00+00 BC":  "4713-01-01 00:00:00+00 BC",
		"infinity":                   "infinity",
		"-infinity":                  "-infinity",
		"2026-01-01T00:00:00Z":       "2026-01-01T00:00:00Z",
	} {
		v, err := d.writeValue(s, in)
		is.NoErr(err)
		is.Equal(v, want)
	}
}
