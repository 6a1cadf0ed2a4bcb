package storage_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
	tg.Tombstones = plain.InstallTombstones // triggers are set up beside the device, as the metadata tables
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
	t.Parallel() // a whole suite, mostly waiting on its server: two at a time
	testdb.MySQL(t)
	sqltest.Run(t, mariaDevice(preset(t, storage.DeviceTextOnly)))
}

// The deployment's shape: in each test the first target opened (the
// source of type fidelity, the internet side of the two-way suite) reads
// and writes over the binary protocol, the second behind a text-only
// device, so values read one way are written and read back the other.
// The single-target tests run behind the device in the suites above.
func TestConformanceMariaDBMixed(t *testing.T) {
	t.Parallel() // a whole suite, mostly waiting on its server: two at a time
	testdb.MySQL(t)
	h := mariaDevice(preset(t, storage.DeviceTextOnly))
	var mu sync.Mutex
	opened := map[string]int{}
	device := h.Open
	h.Open = func(t *testing.T) *sqltest.Target {
		mu.Lock()
		opened[t.Name()]++
		first := opened[t.Name()]%2 == 1
		mu.Unlock()
		if !first {
			return device(t)
		}
		db, err := storage.OpenMySQL(testdb.MySQL(t), testOpts)
		if err != nil {
			t.Fatal(err)
		}
		return target(t, db)
	}
	t.Run("TypeFidelity", func(t *testing.T) { sqltest.RunTypeFidelity(t, h) })
	t.Run("TwoWay", func(t *testing.T) { sqltest.RunTwoWay(t, h) })
}

// The suite behind a device that passes text only, SELECT, INSERT, UPDATE
// and DELETE only, in packets of at most 1 MiB, on a private mariadbd
// whose own max_allowed_packet is 1 MiB (the shared server's is larger):
// a statement that did not fit would fail at the server. The types
// table's rows (a 100,000-byte BLOB of NUL bytes, 70,000 bytes of
// LONGTEXT) cross, and the two-way suite's files cross in the largest
// chunks the profile passes (504 KiB, NUL bytes, so 1,008 KiB escaped).
// Without mariadbd it runs on the shared server, on the profile's limit
// alone.
func TestConformanceMariaDBDMLOnly1MiB(t *testing.T) {
	testdb.MySQL(t)
	base, private := privateMariaDB(t, "1M")
	if private {
		t.Setenv(testdb.EnvDSN, base)
	} else {
		t.Log("no mariadbd here: the 1 MiB limit is the profile's alone")
	}
	p := preset(t, storage.DeviceDMLOnly)
	p.MaxPacket = 1 << 20
	if private {
		t.Run("ServerLimitIsReal", func(t *testing.T) { testPacketLimit(t, p) })
	}
	h := mariaDevice(p)
	h.ChunkSize = p.MaxChunk()
	sqltest.Run(t, h)
}

// privateMariaDB starts a mariadbd of its own on a free loopback port
// with max_allowed_packet packet, stopped when t ends, and returns a DSN
// for it ("root@tcp(127.0.0.1:PORT)/"). ok is false without mariadbd.
func privateMariaDB(t *testing.T, packet string) (dsn string, ok bool) {
	t.Helper()
	bin, err := exec.LookPath("mariadbd")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/mariadbd"); err != nil {
			return "", false
		}
	}
	dir := t.TempDir()
	install := exec.Command("mariadb-install-db", "--no-defaults", "--datadir="+filepath.Join(dir, "data"), "--user=root",
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--no-defaults", "--datadir="+filepath.Join(dir, "data"), "--port="+strconv.Itoa(port),
		"--bind-address=127.0.0.1", "--socket="+filepath.Join(dir, "mysqld.sock"), "--pid-file="+filepath.Join(dir, "mysqld.pid"),
		"--user=root", "--skip-grant-tables", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
		"--innodb-buffer-pool-size=64M", "--skip-log-bin", "--max-allowed-packet="+packet,
		"--log-error="+filepath.Join(dir, "mariadbd.err"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	dsn = fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port)
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var n int64
		if err = admin.QueryRow("SELECT @@max_allowed_packet").Scan(&n); err == nil {
			t.Logf("private mariadbd on port %d, max_allowed_packet %d", port, n)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("private mariadbd did not come up: %v", err)
		}
	}
	return dsn, true
}

// PostgreSQL on pgx's simple protocol, behind a device that passes
// SELECT, INSERT, UPDATE and DELETE only.
func TestConformancePostgresSimpleProtocol(t *testing.T) {
	t.Parallel() // a whole suite, mostly waiting on its server: two at a time
	testdb.Postgres(t)
	p := preset(t, storage.DeviceDMLOnly)
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
	is.True(errors.Is(err, storage.ErrStatementKind))
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
	makeBig(t, plain, db)
	_, err = db.Apply(ctx, bigBatch("b1", 10, 20<<10))
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

// bigBatch is n rows of table big, each a MEDIUMBLOB of size NUL bytes
// (each escaped to two in a text statement) but one.
func bigBatch(id string, n, size int) *batch.Batch {
	b := &batch.Batch{ID: id, Table: "big", Direction: string(gapsync.Push), Columns: []batch.Column{{Name: "id", Key: true}, {Name: "b"}, {Name: "updated_at"}}}
	for i := range n {
		blob := make([]byte, size)
		blob[i%size] = 0xff
		b.Rows = append(b.Rows, batch.Row{Op: batch.OpUpsert, Values: []any{int64(i), blob, []byte("2020-01-01 00:00:00.000000")}})
	}
	return b
}

func makeBig(t *testing.T, plain, db *storage.DB) {
	t.Helper()
	ctx := context.Background()
	if _, err := plain.Bun().DB.ExecContext(ctx, "CREATE TABLE big (id BIGINT PRIMARY KEY, b MEDIUMBLOB, updated_at DATETIME(6))"); err != nil {
		t.Fatal(err)
	}
	tb := gapsync.Table{Name: "big", Key: []string{"id"}, Cursor: "updated_at", Direction: gapsync.Push, Enabled: true}
	if err := db.Configure(ctx, tb); err != nil {
		t.Fatal(err)
	}
}

// testPacketLimit: on a server whose max_allowed_packet is the profile's,
// a batch of 2 MiB in one statement (the default statement size, no
// profile) is refused by the server, and under the profile it is cut into
// statements that fit.
func testPacketLimit(t *testing.T, p storage.DeviceProfile) {
	is := is.New(t)
	ctx := context.Background()
	dsn := testdb.MySQL(t)
	plain, err := storage.OpenMySQL(dsn, testOpts)
	is.NoErr(err)
	defer plain.Close()
	is.NoErr(plain.Migrate(ctx))
	makeBig(t, plain, plain)
	_, err = plain.Apply(ctx, bigBatch("plain", 8, 256<<10))
	is.True(err != nil) // the server refuses the packet
	t.Logf("without the profile: %v", err)

	o := *testOpts
	o.Device = p
	db, err := storage.OpenMySQL(dsn, &o)
	is.NoErr(err)
	defer db.Close()
	_, err = db.Apply(ctx, bigBatch("device", 8, 256<<10))
	is.NoErr(err)
	var n int
	is.NoErr(plain.Bun().DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM big WHERE LENGTH(b) = 262144").Scan(&n))
	is.Equal(n, 8)
}

// SQLite is embedded: no device, the profile is ignored.
func TestDeviceIgnoredBySQLite(t *testing.T) {
	is := is.New(t)
	p := preset(t, storage.DeviceDMLOnly)
	p.MaxPacket = 64 << 10
	db, err := storage.OpenSQLite(testdb.SQLite(t), &storage.Options{Device: p})
	is.NoErr(err)
	defer db.Close()
	is.NoErr(db.Migrate(context.Background())) // creates the tables
	is.Equal(db.Device().Name, "prepared")
	is.Equal(db.MaxChunkSize(), int64(0))
}
