package storage_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/sqltest"
)

// mapping is the README's MySQL ↔ PostgreSQL type table as a test: each
// column's MySQL and PostgreSQL declaration, and on each side the SQL
// that gives its value in one canonical text form.
var mapping = []struct {
	name, my, pg, myText, pgText string
	float                        int // 32 or 64: compared as float bits, not text
}{
	{name: "id", my: "BIGINT NOT NULL", pg: "BIGINT NOT NULL", myText: "CAST(id AS CHAR)", pgText: "id::text"},
	{name: "i", my: "INT", pg: "INTEGER", myText: "CAST(i AS CHAR)", pgText: "i::text"},
	{name: "si", my: "SMALLINT", pg: "SMALLINT", myText: "CAST(si AS CHAR)", pgText: "si::text"},
	{name: "bu", my: "BIGINT UNSIGNED", pg: "NUMERIC(20,0)", myText: "CAST(bu AS CHAR)", pgText: "bu::text"},
	{name: "de", my: "DECIMAL(30,10)", pg: "NUMERIC(30,10)", myText: "CAST(de AS CHAR)", pgText: "de::text"},
	{name: "fl", my: "FLOAT", pg: "REAL", myText: "fl", pgText: "fl::text", float: 32},
	{name: "db", my: "DOUBLE", pg: "DOUBLE PRECISION", myText: "db", pgText: "db::text", float: 64},
	{name: "bo", my: "TINYINT(1)", pg: "BOOLEAN", myText: "CAST(bo AS CHAR)", pgText: "CASE WHEN bo THEN '1' WHEN NOT bo THEN '0' END"},
	{name: "da", my: "DATE", pg: "DATE", myText: "DATE_FORMAT(da, '%Y-%m-%d')", pgText: "to_char(da, 'YYYY-MM-DD')"},
	{name: "dt", my: "DATETIME(6)", pg: "TIMESTAMP(6)", myText: "DATE_FORMAT(dt, '%Y-%m-%d %H:%i:%s.%f')", pgText: "to_char(dt, 'YYYY-MM-DD HH24:MI:SS.US')"},
	{name: "ts", my: "TIMESTAMP(6) NULL", pg: "TIMESTAMPTZ(6)", myText: "DATE_FORMAT(ts, '%Y-%m-%d %H:%i:%s.%f')", pgText: "to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"},
	{name: "tm", my: "TIME(6)", pg: "TIME(6)", myText: "TIME_FORMAT(tm, '%H:%i:%s.%f')", pgText: "to_char(tm, 'HH24:MI:SS.US')"},
	{name: "yr", my: "YEAR", pg: "SMALLINT", myText: "CAST(yr AS CHAR)", pgText: "yr::text"},
	{name: "vc", my: "VARCHAR(100)", pg: "VARCHAR(100)", myText: "vc", pgText: "vc"},
	{name: "tx", my: "TEXT", pg: "TEXT", myText: "tx", pgText: "tx"},
	{name: "js", my: "JSON", pg: "JSON", myText: "CAST(js AS CHAR)", pgText: "js::text"},
	{name: "jb", my: "JSON", pg: "JSONB", myText: "CAST(jb AS CHAR)", pgText: "jb::text"},
	{name: "st", my: "SET('x','y','中')", pg: "TEXT", myText: "st", pgText: "st"},
	{name: "bl", my: "BLOB", pg: "BYTEA", myText: "HEX(bl)", pgText: "upper(encode(bl, 'hex'))"},
	{name: "bt", my: "BIT(16)", pg: "BYTEA", myText: "LPAD(HEX(bt), 4, '0')", pgText: "upper(encode(bt, 'hex'))"},
	{name: "en", my: "ENUM('a','中')", pg: "TEXT", myText: "en", pgText: "en"},
	{name: "uu", my: "CHAR(36)", pg: "UUID", myText: "uu", pgText: "uu::text"},
	{name: "updated_at", my: "DATETIME(6)", pg: "TIMESTAMP(6)", myText: "DATE_FORMAT(updated_at, '%Y-%m-%d %H:%i:%s.%f')", pgText: "to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS.US')"},
}

var mappedTable = gapsync.Table{Name: "mapped", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}

func mappedDDL(pg bool) string {
	var cols []string
	for _, m := range mapping {
		typ := m.my
		if pg {
			typ = m.pg
		}
		cols = append(cols, m.name+" "+typ)
	}
	return "CREATE TABLE mapped (" + strings.Join(cols, ", ") + ", PRIMARY KEY (id))"
}

// The rows of the mapping test, as column → SQL literal (both engines
// read these literals alike); a missing column is NULL.
var mappedRows = []map[string]string{
	{"id": "1", "i": "2147483647", "si": "-32768", "bu": "18446744073709551615", "de": "-12345678901234567890.0123456789",
		"fl": "3.40282e38", "db": "1.7976931348623157e308", "bo": "1", "da": "'9999-12-31'", "dt": "'9999-12-31 23:59:59.999999'",
		"ts": "'2038-01-19 03:14:07.999999'", "tm": "'23:59:59.999999'", "yr": "2155", "vc": "'中文 😀 ''q'' \"d\"'", "tx": "'長い text'",
		"js": `'{"k": [1, 2.5, "中", null]}'`, "jb": `'{"b": 1, "aa": [true, null, "😀"]}'`, "st": "'x,中'", "bl": "X'00FF00'", "bt": "X'8001'", "en": "'中'", "uu": "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
		"updated_at": "'1999-01-01 00:00:00.000000'"},
	{"id": "2", "i": "-2147483648", "si": "0", "bu": "0", "de": "0.0000000001", "fl": "-1.17549435e-38", "db": "4.9e-324", "bo": "0",
		"da": "'1000-01-01'", "dt": "'1000-01-01 00:00:00.000000'", "ts": "'1970-01-01 00:00:01.000000'", "tm": "'00:00:00.000001'",
		"yr": "1901", "vc": "''", "tx": "' trailing '", "js": "'[]'", "bl": "X''", "bt": "X'0000'", "en": "'a'", "uu": "'00000000-0000-0000-0000-000000000000'",
		"updated_at": "'1999-01-01 00:00:00.500000'"},
	{"id": "3", "db": "0.30000000000000004", "fl": "16777216", "updated_at": "'1999-01-02 00:00:00.000000'"},
}

func insertMapped(t *testing.T, x *sqltest.Target, pg bool) {
	t.Helper()
	for _, r := range mappedRows {
		var cols, vals []string
		for _, m := range mapping {
			v, ok := r[m.name]
			if !ok {
				continue
			}
			cols = append(cols, m.name)
			if pg {
				switch m.name {
				case "bo":
					v = map[string]string{"1": "true", "0": "false"}[v]
				case "bl", "bt":
					v = "'\\x" + strings.Trim(strings.TrimPrefix(v, "X"), "'") + "'::bytea"
				case "fl":
					if v == "3.40282e38" {
						v = "3.4028235e38" // the largest float4, whose shortest text is past MySQL's FLOAT literal limit
					}
				case "vc":
					v = strings.ReplaceAll(v, `\"`, `"`)
				}
			}
			vals = append(vals, v)
		}
		if _, err := x.SQL.Exec("INSERT INTO mapped (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(vals, ", ") + ")"); err != nil {
			t.Fatalf("insert mapped row %s: %v", r["id"], err)
		}
	}
}

// canonical reads every mapped row in its canonical text form.
func canonical(t *testing.T, x *sqltest.Target, pg bool) [][]string {
	t.Helper()
	var exprs []string
	for _, m := range mapping {
		e := m.myText
		if pg {
			e = m.pgText
		}
		exprs = append(exprs, e)
	}
	// A bound argument: MySQL then answers in its binary protocol, with
	// FLOAT and DOUBLE exact (its text protocol rounds FLOAT to 6 digits).
	rows, err := x.SQL.Query("SELECT "+strings.Join(exprs, ", ")+" FROM mapped WHERE 1 = ? ORDER BY id", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals := make([]*string, len(mapping))
		ptrs := make([]any, len(mapping))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(mapping))
		for i, v := range vals {
			switch {
			case v == nil:
				row[i] = "NULL"
			case mapping[i].float > 0:
				f, err := strconv.ParseFloat(*v, mapping[i].float)
				if err != nil {
					t.Fatalf("column %s: %v", mapping[i].name, err)
				}
				if mapping[i].float == 32 {
					row[i] = strconv.FormatUint(uint64(math.Float32bits(float32(f))), 16)
				} else {
					row[i] = strconv.FormatUint(math.Float64bits(f), 16)
				}
			default:
				row[i] = *v
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mixedPair(t *testing.T) (my, pg *sqltest.Target) {
	t.Helper()
	testdb.MySQL(t)
	testdb.Postgres(t)
	return openTarget(t, "mysql"), openTarget(t, "postgres")
}

// openTarget opens a new, migrated database of kind "mysql" or "postgres".
func openTarget(t *testing.T, kind string) *sqltest.Target {
	t.Helper()
	var db *storage.DB
	var err error
	if kind == "postgres" {
		db, err = storage.OpenPostgres(testdb.Postgres(t), testOpts)
	} else {
		db, err = storage.OpenMySQL(testdb.MySQL(t), testOpts)
	}
	if err != nil {
		t.Fatal(err)
	}
	return target(t, db)
}

// Every type on the mapping table crosses MySQL → PostgreSQL and
// PostgreSQL → MySQL with its value intact, as the mapping declares it.
func TestMixedPairTypeMapping(t *testing.T) {
	for _, dir := range []string{"mysql to postgres", "postgres to mysql"} {
		t.Run(dir, func(t *testing.T) {
			is := is.New(t)
			my, pg := mixedPair(t)
			src, dst, srcPG := my, pg, false
			if dir == "postgres to mysql" {
				src, dst, srcPG = pg, my, true
			}
			for _, x := range []*sqltest.Target{my, pg} {
				_, err := x.SQL.Exec(mappedDDL(x == pg))
				is.NoErr(err)
				is.NoErr(x.Configure(context.Background(), mappedTable))
			}
			insertMapped(t, src, srcPG)
			want := canonical(t, src, srcPG)
			is.Equal(len(want), len(mappedRows))
			n := sqltest.Sync(t, src, dst, mappedTable, gapsync.Window{To: "2999-01-01 00:00:00.000000"}, gapsync.Page{Rows: 2})
			is.Equal(n, len(mappedRows))
			got := canonical(t, dst, !srcPG)
			for i := range want {
				for j, m := range mapping {
					if got[i][j] != want[i][j] {
						t.Errorf("row %d column %s (%s ↔ %s): sent %q, stored %q", i, m.name, m.my, m.pg, want[i][j], got[i][j])
					}
				}
			}
		})
	}
}

// A value that has no exact form on the other engine is refused, naming
// the table, key and column, and nothing of the batch is written.
func TestMixedPairRefusesInexactValues(t *testing.T) {
	is := is.New(t)
	my, pg := mixedPair(t)
	ctx := context.Background()
	_, err := my.SQL.Exec("CREATE TABLE odd (id BIGINT PRIMARY KEY, da DATE, dt DATETIME(6), de DECIMAL(10,4), updated_at DATETIME(6))")
	is.NoErr(err)
	_, err = pg.SQL.Exec("CREATE TABLE odd (id BIGINT PRIMARY KEY, da DATE, dt TIMESTAMP(3), de NUMERIC(10,2), updated_at TIMESTAMP(6))")
	is.NoErr(err)
	odd := gapsync.Table{Name: "odd", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
	is.NoErr(my.Configure(ctx, odd))
	is.NoErr(pg.Configure(ctx, odd))
	for _, tc := range []struct{ row, col, want string }{
		{"(1, '0000-00-00', NULL, NULL, '1999-01-01')", "da", "zero date"},
		{"(2, NULL, '2020-01-01 00:00:00.123456', NULL, '1999-01-01')", "dt", "rounded"},
		{"(3, NULL, NULL, 1.2345, '1999-01-01')", "de", "rounded"},
	} {
		_, err := my.SQL.Exec("DELETE FROM odd")
		is.NoErr(err)
		_, err = my.SQL.Exec("SET SESSION sql_mode = ''")
		is.NoErr(err)
		_, err = my.SQL.Exec("INSERT INTO odd VALUES " + tc.row)
		is.NoErr(err)
		err = my.Source.Changes(ctx, odd, gapsync.Window{To: "2999-01-01 00:00:00.000000"}, gapsync.Page{Rows: 10}, func(b *batch.Batch) error {
			b.ID, b.Direction = "odd-"+tc.col, string(gapsync.Push)
			_, err := pg.Writer.Apply(ctx, b)
			return err
		})
		is.True(errors.Is(err, gapsync.ErrRejected))
		msg := err.Error()
		is.True(strings.Contains(msg, "table odd"))
		is.True(strings.Contains(msg, "column "+tc.col))
		is.True(strings.Contains(msg, "key ("))
		is.True(strings.Contains(msg, tc.want))
		var n int
		is.NoErr(pg.SQL.QueryRow("SELECT COUNT(*) FROM odd").Scan(&n))
		is.Equal(n, 0) // nothing written
	}
}

// A PostgreSQL key declared GENERATED ALWAYS AS IDENTITY takes the value
// that arrives (the other side's id), from PostgreSQL or from MySQL.
func TestPostgresIdentityKeyTakesArrivingValue(t *testing.T) {
	is := is.New(t)
	my, pg := mixedPair(t)
	pg2 := openTarget(t, "postgres")
	ident := gapsync.Table{Name: "ident", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
	ctx := context.Background()
	for _, x := range []*sqltest.Target{pg, pg2} {
		_, err := x.SQL.Exec("CREATE TABLE ident (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v TEXT, updated_at TIMESTAMP(6) DEFAULT LOCALTIMESTAMP)")
		is.NoErr(err)
		is.NoErr(x.Configure(ctx, ident))
	}
	_, err := my.SQL.Exec("CREATE TABLE ident (id BIGINT AUTO_INCREMENT PRIMARY KEY, v TEXT, updated_at DATETIME(6) DEFAULT '1999-01-01')")
	is.NoErr(err)
	is.NoErr(my.Configure(ctx, ident))
	_, err = pg.SQL.Exec("INSERT INTO ident (v, updated_at) VALUES ('a', '1999-01-01'), ('b', '1999-01-01')")
	is.NoErr(err)
	_, err = my.SQL.Exec("INSERT INTO ident (id, v) VALUES (40, 'from mysql')")
	is.NoErr(err)
	w := gapsync.Window{To: "2999-01-01 00:00:00.000000"}
	is.Equal(sqltest.Sync(t, pg, pg2, ident, w, gapsync.Page{Rows: 10}), 2)
	is.Equal(sqltest.Sync(t, my, pg2, ident, w, gapsync.Page{Rows: 10}), 1)
	var ids string
	is.NoErr(pg2.SQL.QueryRow("SELECT string_agg(id::text || '=' || v, ',' ORDER BY id) FROM ident").Scan(&ids))
	is.Equal(ids, "1=a,2=b,40=from mysql")
}

// A generated column is read and sent, and never written: the database
// that receives the row computes it (PostgreSQL and MySQL refuse a value
// for it), on the same engine and across engines.
func TestGeneratedColumnsAreNotWritten(t *testing.T) {
	is := is.New(t)
	my, pg := mixedPair(t)
	pg2, my2 := openTarget(t, "postgres"), openTarget(t, "mysql")
	gen := gapsync.Table{Name: "orderlines", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
	ctx := context.Background()
	for _, x := range []*sqltest.Target{pg, pg2} {
		_, err := x.SQL.Exec("CREATE TABLE orderlines (id BIGINT PRIMARY KEY, price NUMERIC(10,2), qty INTEGER, " +
			"total NUMERIC(12,2) GENERATED ALWAYS AS (price * qty) STORED, updated_at TIMESTAMP(6))")
		is.NoErr(err)
		is.NoErr(x.Configure(ctx, gen))
	}
	for _, x := range []*sqltest.Target{my, my2} {
		_, err := x.SQL.Exec("CREATE TABLE orderlines (id BIGINT PRIMARY KEY, price DECIMAL(10,2), qty INT, " +
			"total DECIMAL(12,2) AS (price * qty) STORED, updated_at DATETIME(6))")
		is.NoErr(err)
		is.NoErr(x.Configure(ctx, gen))
	}
	_, err := pg.SQL.Exec("INSERT INTO orderlines (id, price, qty, updated_at) VALUES (1, 2.50, 4, '1999-01-01')")
	is.NoErr(err)
	_, err = my.SQL.Exec("INSERT INTO orderlines (id, price, qty, updated_at) VALUES (2, 1.25, 2, '1999-01-01')")
	is.NoErr(err)
	w, p := gapsync.Window{To: "2999-01-01 00:00:00.000000"}, gapsync.Page{Rows: 10}
	is.Equal(sqltest.Sync(t, pg, pg2, gen, w, p), 1) // PostgreSQL to PostgreSQL
	is.Equal(sqltest.Sync(t, my, pg2, gen, w, p), 1) // MySQL to PostgreSQL
	is.Equal(sqltest.Sync(t, pg, my2, gen, w, p), 1) // PostgreSQL to MySQL
	is.Equal(sqltest.Sync(t, my, my2, gen, w, p), 1) // MySQL to MySQL
	var a, b string
	is.NoErr(pg2.SQL.QueryRow("SELECT string_agg(id::text || ':' || total::text, ',' ORDER BY id) FROM orderlines").Scan(&a))
	is.NoErr(my2.SQL.QueryRow("SELECT GROUP_CONCAT(CONCAT(id, ':', total) ORDER BY id) FROM orderlines").Scan(&b))
	is.Equal(a, "1:10.00,2:2.50")
	is.Equal(b, "1:10.00,2:2.50")
}

// In a PostgreSQL database whose zone is not UTC, a timestamptz keeps its
// instant both ways, and a trigger's now() stamps a row that sync writes
// in the database's zone, as it stamps the application's rows.
func TestPostgresLocalZone(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	my := openTarget(t, "mysql")
	url := testdb.Postgres(t)
	admin, err := storage.OpenPostgres(url, testOpts)
	is.NoErr(err)
	var dbname string
	is.NoErr(admin.Bun().DB.QueryRow("SELECT current_database()").Scan(&dbname))
	_, err = admin.Bun().DB.Exec(`ALTER DATABASE "` + dbname + `" SET timezone = 'Asia/Shanghai'`)
	is.NoErr(err)
	admin.Close()
	pdb, err := storage.OpenPostgres(url, testOpts)
	is.NoErr(err)
	pg := target(t, pdb)
	ev := gapsync.Table{Name: "ev", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
	for _, q := range []string{
		"CREATE TABLE ev (id BIGINT PRIMARY KEY, at TIMESTAMPTZ(6), stamped TIMESTAMP(6), updated_at TIMESTAMP(6))",
		"CREATE FUNCTION ev_stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.stamped := now()::timestamp; RETURN NEW; END $$",
		"CREATE TRIGGER ev_stamp BEFORE INSERT OR UPDATE ON ev FOR EACH ROW EXECUTE FUNCTION ev_stamp()",
	} {
		_, err := pg.SQL.Exec(q)
		is.NoErr(err)
	}
	_, err = my.SQL.Exec("CREATE TABLE ev (id BIGINT PRIMARY KEY, at TIMESTAMP(6) NULL, stamped DATETIME(6), updated_at DATETIME(6))")
	is.NoErr(err)
	is.NoErr(pg.Configure(ctx, ev))
	is.NoErr(my.Configure(ctx, ev))
	_, err = my.SQL.Exec("INSERT INTO ev VALUES (1, '2026-01-01 00:00:00.250000', NULL, '1999-01-01')")
	is.NoErr(err)
	_, err = pg.SQL.Exec("INSERT INTO ev (id, at, updated_at) VALUES (2, '2026-06-01 12:00:00+08', '1999-01-01')")
	is.NoErr(err)
	w, p := gapsync.Window{To: "2999-01-01 00:00:00.000000"}, gapsync.Page{Rows: 10}
	is.Equal(sqltest.Sync(t, my, pg, ev, w, p), 1)
	var utc string
	var local bool
	is.NoErr(pg.SQL.QueryRow("SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), abs(extract(epoch FROM stamped - (now() AT TIME ZONE 'Asia/Shanghai'))) < 300 FROM ev WHERE id = 1").Scan(&utc, &local))
	is.Equal(utc, "2026-01-01 00:00:00.250000") // the same instant
	is.True(local)                              // stamped in Asia/Shanghai, like the application's rows
	_, err = my.SQL.Exec("DELETE FROM ev")
	is.NoErr(err)
	is.Equal(sqltest.Sync(t, pg, my, ev, gapsync.Window{From: "1998-01-01 00:00:00.000000", To: w.To}, p), 1) // row 1 came by sync: no echo
	is.NoErr(my.SQL.QueryRow("SELECT DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f') FROM ev WHERE id = 2").Scan(&utc))
	is.Equal(utc, "2026-06-01 04:00:00.000000") // noon in Shanghai is 04:00 UTC
}
