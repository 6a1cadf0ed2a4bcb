package examples_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
)

// TestZoneMainsMixedEngines runs the three zone mains as processes with
// the internet zone on MariaDB and the intranet on PostgreSQL, then the
// reverse, and moves rows and files both ways: new rows out, edits and a
// hard delete back, a file each way with its reference rewritten.
func TestZoneMainsMixedEngines(t *testing.T) {
	testdb.MySQL(t)
	testdb.Postgres(t)
	bin := buildMains(t, "internet", "external", "intranet")
	for _, pair := range []struct{ name, inet, intra string }{
		{"mariadb internet, postgres intranet", "mysql", "postgres"},
		{"postgres internet, mariadb intranet", "postgres", "mysql"},
	} {
		t.Run(pair.name, func(t *testing.T) { mixedZones(t, bin, pair.inet, pair.intra) })
	}
}

// engineDDL is the demo and docs tables in each engine's own types.
var engineDDL = map[string][]string{
	"mysql": {
		"CREATE TABLE demo (id BIGINT PRIMARY KEY, title VARCHAR(100) NOT NULL, amount DECIMAL(20,6), flag TINYINT(1), data VARBINARY(64), updated_at DATETIME(6) NOT NULL)",
		"CREATE TABLE docs (id BIGINT PRIMARY KEY, path VARCHAR(300), updated_at DATETIME(6))",
	},
	"postgres": {
		"CREATE TABLE demo (id BIGINT PRIMARY KEY, title VARCHAR(100) NOT NULL, amount NUMERIC(20,6), flag BOOLEAN, data BYTEA, updated_at TIMESTAMP(6) NOT NULL)",
		"CREATE TABLE docs (id BIGINT PRIMARY KEY, path VARCHAR(300), updated_at TIMESTAMP(6))",
	},
}

// demoText reads demo in one form on either engine: id, title, amount,
// flag as 0/1, data in hex.
var demoText = map[string]string{
	"mysql":    "SELECT id, title, CAST(amount AS CHAR), CAST(flag AS CHAR), LOWER(HEX(data)) FROM demo ORDER BY id",
	"postgres": "SELECT id, title, amount::text, CASE WHEN flag THEN '1' WHEN NOT flag THEN '0' END, encode(data, 'hex') FROM demo ORDER BY id",
}

var nowSQL = map[string]string{"mysql": "NOW(6)", "postgres": "LOCALTIMESTAMP(6)"}

func engineDSN(t *testing.T, kind string) string {
	if kind == "postgres" {
		return testdb.Postgres(t)
	}
	return testdb.MySQL(t)
}

func mixedZones(t *testing.T, bin, inetKind, intraKind string) {
	is := is.New(t)
	ctx := context.Background()
	inetDSN, intraDSN := engineDSN(t, inetKind), engineDSN(t, intraKind)
	key, err := crypto.GenerateKey("mixed1")
	is.NoErr(err)
	env := append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())
	open := func(dsn, kind string) *sql.DB {
		db, err := storage.Open(dsn, nil)
		is.NoErr(err)
		t.Cleanup(func() { db.Close() })
		for _, q := range engineDDL[kind] {
			_, err := db.Bun().DB.ExecContext(ctx, q)
			is.NoErr(err)
		}
		return db.Bun().DB // numbers ? for PostgreSQL
	}
	inet, intra := open(inetDSN, inetKind), open(intraDSN, intraKind)
	exec1 := func(db *sql.DB, q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	inetStore, intraStore := t.TempDir(), t.TempDir()
	report := bytes.Repeat([]byte("年度报告 annual report\n"), 50_000)
	is.NoErr(os.WriteFile(filepath.Join(inetStore, "年报.txt"), report, 0o644))
	exec1(inet, "INSERT INTO docs VALUES (1, '年报.txt', "+nowSQL[inetKind]+")")
	for i := 0; i < 30; i++ {
		flag := []string{"0", "1"}[i%2]
		if inetKind == "postgres" {
			flag = []string{"false", "true"}[i%2]
		}
		exec1(inet, "INSERT INTO demo VALUES (?, ?, ?, "+flag+", ?, "+nowSQL[inetKind]+")",
			i, fmt.Sprintf("标题 %d 😀", i), fmt.Sprintf("%d.123456", i), []byte{byte(i), 0, 255})
	}

	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	tables := []string{"-table", "demo:id:updated_at:both", "-table", "docs:id:updated_at:both:path"}
	run("intranet", append([]string{"-db", intraDSN, "-tombstones"}, tables...)...)
	addr := freeAddr(t)
	external := startExternal(t, bin, env, addr, intraDSN)
	defer stop(t, external)
	inetArgs := append([]string{"-once", "-db", inetDSN, "-gateway", "http://" + addr, "-tombstones", "-lag", "200ms",
		"-store", "dir:" + inetStore}, tables...)
	cycle := func() string {
		t.Helper()
		time.Sleep(300 * time.Millisecond) // past the lag
		out := run("internet", inetArgs...)
		run("intranet", "-db", intraDSN, "-store", "dir:"+intraStore, "-once")
		return out
	}
	out := cycle()
	if !strings.Contains(out, "rows_pushed=31 rows_pulled=0") {
		t.Fatalf("first cycle:\n%s", out)
	}
	got, err := os.ReadFile(filepath.Join(intraStore, "from-internet", "年报.txt"))
	is.NoErr(err)
	is.True(bytes.Equal(got, report))
	var path string
	is.NoErr(intra.QueryRowContext(ctx, "SELECT path FROM docs WHERE id = 1").Scan(&path))
	is.Equal(path, "from-internet/年报.txt")

	// Back the other way: edits, a hard delete and a file of the intranet.
	scan := bytes.Repeat([]byte{0, 1, 2, 0xff}, 300_000)
	is.NoErr(os.WriteFile(filepath.Join(intraStore, "scan.bin"), scan, 0o644))
	exec1(intra, "INSERT INTO docs VALUES (2, 'scan.bin', "+nowSQL[intraKind]+")")
	exec1(intra, "UPDATE demo SET title = 'intranet edit 内网', updated_at = "+nowSQL[intraKind]+" WHERE id IN (10, 11)")
	exec1(intra, "DELETE FROM demo WHERE id = 12")
	exec1(inet, "UPDATE demo SET title = 'internet edit 外网', updated_at = "+nowSQL[inetKind]+" WHERE id = 3")
	// Until a cycle is quiet: a window may close before the last edit
	// (the bound waits for open writers), and the intranet's file travels
	// once it is staged. Then every edit has moved once, and nothing
	// echoed between the engines.
	pushed, pulled := 0, 0
	for i := 0; ; i++ {
		if i == 6 {
			t.Fatalf("no quiet cycle after %d:\n%s", i, out)
		}
		out = cycle()
		p, q := cycleCounts(t, out)
		pushed, pulled = pushed+p, pulled+q
		if p == 0 && q == 0 && i > 0 {
			break
		}
	}
	is.Equal(pushed, 1) // the internet's edit, and no echo of what came from the intranet
	is.Equal(pulled, 4) // two edits, a delete and a docs row
	got, err = os.ReadFile(filepath.Join(inetStore, "from-intranet", "scan.bin"))
	if err != nil {
		t.Fatalf("the intranet's file did not arrive: %v\n%s", err, out)
	}
	is.True(bytes.Equal(got, scan))
	is.NoErr(inet.QueryRowContext(ctx, "SELECT path FROM docs WHERE id = 2").Scan(&path))
	is.Equal(path, "from-intranet/scan.bin")

	read := func(db *sql.DB, kind string) [][5]string {
		rows, err := db.QueryContext(ctx, demoText[kind])
		is.NoErr(err)
		defer rows.Close()
		var out [][5]string
		for rows.Next() {
			var r [5]sql.NullString
			is.NoErr(rows.Scan(&r[0], &r[1], &r[2], &r[3], &r[4]))
			out = append(out, [5]string{r[0].String, r[1].String, r[2].String, r[3].String, r[4].String})
		}
		is.NoErr(rows.Err())
		return out
	}
	a, b := read(inet, inetKind), read(intra, intraKind)
	is.Equal(len(a), 29)
	is.Equal(a, b) // both zones hold the same rows, value for value
	is.Equal(a[3][1], "internet edit 外网")
	is.Equal(a[10][1], "intranet edit 内网") // id 10
	is.Equal(a[12][0], "13")               // id 12 was deleted on both sides
}

var cycleRe = regexp.MustCompile(`rows_pushed=(\d+) rows_pulled=(\d+)`)

// cycleCounts reads the rows a cycle pushed and pulled from its last line.
func cycleCounts(t *testing.T, out string) (pushed, pulled int) {
	t.Helper()
	m := cycleRe.FindAllStringSubmatch(out, -1)
	if m == nil {
		t.Fatalf("no cycle summary in:\n%s", out)
	}
	last := m[len(m)-1]
	pushed, _ = strconv.Atoi(last[1])
	pulled, _ = strconv.Atoi(last[2])
	return pushed, pulled
}
