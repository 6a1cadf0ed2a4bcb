package storage_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/sqltest"
)

// deviceTarget opens a target behind the device profile p on the
// database at dsn: the roles use the profile's connection, while the
// suite's own setup and checks (Target.SQL: DDL, row hashes read over the
// binary protocol) and the migration use a plain one, as an operator's
// own session beside the device would.
func deviceTarget(t *testing.T, open func(string, *storage.Options) (*storage.DB, error), dsn string, p storage.DeviceProfile) *sqltest.Target {
	t.Helper()
	plain, err := open(dsn, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	checks := target(t, plain)
	o := *testOpts
	o.Device = p
	db, err := open(dsn, &o)
	if err != nil {
		t.Fatal(err)
	}
	tg := target(t, db) // Migrate: under dml-only it only checks the tables are there
	tg.SQL = checks.SQL
	return tg
}

// mariaDevice is the MariaDB harness behind the device profile p.
func mariaDevice(p storage.DeviceProfile) sqltest.Harness {
	return sqltest.Harness{
		Open: func(t *testing.T) *sqltest.Target {
			return deviceTarget(t, storage.OpenMySQL, testdb.MySQL(t), p)
		},
		Now:      "NOW(6)",
		Types:    sqltest.MySQLTypes,
		Features: sqltest.Features{ConcurrentWriters: true, ChecksumTable: true},
	}
}

func preset(t *testing.T, name string) storage.DeviceProfile {
	p, err := storage.DevicePreset(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The whole suite, type fidelity first, with every statement through the
// device as text: values written into the statements, FLOAT read through
// a DOUBLE.
func TestConformanceMariaDBTextOnly(t *testing.T) {
	testdb.MySQL(t)
	sqltest.Run(t, mariaDevice(preset(t, storage.DeviceTextOnly)))
}

// The suite behind a device that passes text only, SELECT, INSERT, UPDATE
// and DELETE only, in packets of at most 1 MiB (checked here before each
// statement is sent; the server's own max_allowed_packet is larger): the
// types table's rows (a 100,000-byte BLOB of NUL bytes, 70,000 bytes of
// LONGTEXT) and the two-way suite's files cross in statements that fit.
func TestConformanceMariaDBDMLOnly1MiB(t *testing.T) {
	testdb.MySQL(t)
	p := preset(t, storage.DeviceDMLOnly)
	p.MaxPacket = 1 << 20
	sqltest.Run(t, mariaDevice(p))
}

// PostgreSQL on pgx's simple protocol.
func TestConformancePostgresSimpleProtocol(t *testing.T) {
	testdb.Postgres(t)
	p := preset(t, storage.DeviceTextOnly)
	sqltest.Run(t, sqltest.Harness{
		Open: func(t *testing.T) *sqltest.Target {
			return deviceTarget(t, storage.OpenPostgres, testdb.Postgres(t), p)
		},
		Now:      "LOCALTIMESTAMP(6)",
		Types:    sqltest.PostgresTypes,
		Features: sqltest.Features{ConcurrentWriters: true},
		TimeType: "TIMESTAMP(6)",
		TimeText: "to_char(%s, 'YYYY-MM-DD HH24:MI:SS.US')",
		TextHash: "SELECT md5(string_agg(t::text, E'\\n' ORDER BY %[2]s)) FROM %[1]s AS t",
	})
}

func TestDevicePresets(t *testing.T) {
	is := is.New(t)
	p, err := storage.DevicePreset("")
	is.NoErr(err)
	is.Equal(p, storage.DeviceProfile{Name: "prepared"})
	p, err = storage.DevicePreset("Text-Only")
	is.NoErr(err)
	is.True(p.TextOnly)
	is.Equal(len(p.Statements), 0)
	p, err = storage.DevicePreset("dml-only")
	is.NoErr(err)
	is.True(p.TextOnly)
	is.True(p.Allows("select") && p.Allows("INSERT") && p.Allows("UPDATE") && p.Allows("DELETE"))
	is.True(!p.Allows("CREATE") && !p.Allows("SHOW"))
	is.NoErr(p.Validate())
	_, err = storage.DevicePreset("diode")
	is.True(err != nil && strings.Contains(err.Error(), "prepared, text-only, dml-only"))

	is.True((storage.DeviceProfile{MaxPacket: 1000}).Validate() != nil)                          // too small for a statement
	is.True((storage.DeviceProfile{Statements: []string{"SELECT", "INSERT"}}).Validate() != nil) // no UPDATE, DELETE
	is.True((storage.DeviceProfile{Statements: []string{"SELECT;"}}).Validate() != nil)

	// A chunk fits the packet with its statement, twice over as text.
	is.Equal((storage.DeviceProfile{MaxPacket: 1 << 20}).MaxChunk(), int64(1<<20-16<<10))
	is.Equal((storage.DeviceProfile{MaxPacket: 1 << 20, TextOnly: true}).MaxChunk(), int64(504<<10))
	is.Equal((storage.DeviceProfile{TextOnly: true}).MaxChunk(), int64(0))
}

func TestStatementKind(t *testing.T) {
	is := is.New(t)
	for q, want := range map[string]string{
		"SELECT 1":                             "SELECT",
		"  \n\tinsert into t values (1)":       "INSERT",
		"(SELECT a FROM t) UNION (SELECT 1)":   "SELECT",
		"/* hint */ UPDATE t SET a = 1":        "UPDATE",
		"-- note\nDELETE FROM t":               "DELETE",
		"# note\nREPLACE INTO t VALUES (1)":    "REPLACE",
		"CREATE TABLE IF NOT EXISTS x (a INT)": "CREATE",
		"SHOW GLOBAL STATUS":                   "SHOW",
		"":                                     "",
		"/* unterminated":                      "",
	} {
		is.Equal(storage.StatementKind(q), want) // q
	}
}

// Behind a DML-only device: every other statement is refused before it is
// sent, naming its kind; Migrate creates nothing and prints the DDL to run
// by hand; a statement past the packet limit is refused before it is sent.
func TestDeviceRefusesMariaDB(t *testing.T) {
	dsn := testdb.MySQL(t)
	is := is.New(t)
	ctx := context.Background()
	p := preset(t, storage.DeviceDMLOnly)
	p.MaxPacket = 64 << 10
	o := *testOpts
	o.Device = p
	db, err := storage.OpenMySQL(dsn, &o)
	is.NoErr(err)
	defer db.Close()

	_, err = db.Bun().DB.ExecContext(ctx, "CREATE TABLE nope (a INT)")
	is.True(errors.Is(err, storage.ErrStatementKind))
	is.True(strings.Contains(err.Error(), "CREATE")) // names the kind

	err = db.Migrate(ctx)
	is.True(errors.Is(err, gapsync.ErrRejected))
	is.True(strings.Contains(err.Error(), "by hand"))
	is.True(strings.Contains(err.Error(), "CREATE TABLE IF NOT EXISTS `sync_config`"))
	var n int
	is.NoErr(db.Bun().DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()").Scan(&n))
	is.Equal(n, 0) // nothing created

	// The printed DDL, run by hand, is what Migrate needs.
	plain, err := storage.OpenMySQL(dsn, testOpts)
	is.NoErr(err)
	defer plain.Close()
	for _, q := range db.MigrationDDL() {
		_, err := plain.Bun().DB.ExecContext(ctx, q)
		is.NoErr(err) // q
	}
	is.NoErr(db.Migrate(ctx))
	// ... and an older table's missing column is named with its ALTER.
	_, err = plain.Bun().DB.ExecContext(ctx, "ALTER TABLE file_record DROP COLUMN sm3")
	is.NoErr(err)
	err = db.Migrate(ctx)
	is.True(err != nil && strings.Contains(err.Error(), "ALTER TABLE file_record ADD COLUMN sm3"))
	is.NoErr(plain.Migrate(ctx))

	// Past the packet limit: refused here, not by the server (whose
	// max_allowed_packet is larger).
	_, err = db.Bun().DB.ExecContext(ctx, "SELECT ?", make([]byte, 40<<10))
	is.True(errors.Is(err, gapsync.ErrTooLarge))
	is.True(strings.Contains(err.Error(), "65536"))

	// A batch of rows larger than a packet is cut into statements that fit.
	_, err = plain.Bun().DB.ExecContext(ctx, "CREATE TABLE big (id BIGINT PRIMARY KEY, b MEDIUMBLOB, updated_at DATETIME(6))")
	is.NoErr(err)
	tb := gapsync.Table{Name: "big", Key: []string{"id"}, Cursor: "updated_at", Direction: gapsync.Push, Enabled: true}
	is.NoErr(db.Configure(ctx, tb))
	b := &batch.Batch{ID: "b1", Table: "big", Direction: string(gapsync.Push), Columns: []batch.Column{{Name: "id", Key: true}, {Name: "b"}, {Name: "updated_at"}}}
	for i := range 10 {
		blob := make([]byte, 20<<10) // NUL bytes: each escaped to two
		blob[i] = 0xff
		b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: []any{int64(i), blob, []byte("2020-01-01 00:00:00.000000")}})
	}
	_, err = db.Apply(ctx, b)
	is.NoErr(err)
	is.NoErr(plain.Bun().DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM big WHERE LENGTH(b) = 20480").Scan(&n))
	is.Equal(n, 10)
	is.Equal(db.MaxChunkSize(), int64(24<<10))
}

// Text-only sends no statement to be prepared on the server, also when the
// code prepares one (it stays on the client): MariaDB counts none in the
// session, PostgreSQL holds none.
func TestDeviceTextOnlyPreparesNothing(t *testing.T) {
	ctx := context.Background()
	for _, e := range []struct {
		name  string
		open  func(string, *storage.Options) (*storage.DB, error)
		dsn   func(testing.TB) string
		count string
	}{
		{"mariadb", storage.OpenMySQL, testdb.MySQL, "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'COM_STMT_PREPARE'"},
		{"postgres", storage.OpenPostgres, testdb.Postgres, "SELECT COUNT(*) FROM pg_prepared_statements"},
	} {
		t.Run(e.name, func(t *testing.T) {
			is := is.New(t)
			o := *testOpts
			o.Device = preset(t, storage.DeviceTextOnly)
			db, err := e.open(e.dsn(t), &o)
			is.NoErr(err)
			defer db.Close()
			conn, err := db.Bun().DB.Conn(ctx)
			is.NoErr(err)
			defer conn.Close()
			var s string
			is.NoErr(conn.QueryRowContext(ctx, "SELECT ?", "中'\\ 😀").Scan(&s))
			is.Equal(s, "中'\\ 😀")
			st, err := conn.PrepareContext(ctx, "SELECT ?")
			is.NoErr(err)
			var got []byte
			is.NoErr(st.QueryRowContext(ctx, []byte{0, 1, 0xff}).Scan(&got))
			is.NoErr(st.Close())
			var n int
			is.NoErr(conn.QueryRowContext(ctx, e.count).Scan(&n))
			is.Equal(n, 0) // nothing prepared on the server
		})
	}
}
