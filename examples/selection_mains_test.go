package examples_test

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
)

// TestMainsColumnAndRowSelection runs the zone mains as processes with a
// table synced both ways, a column excluded and a row filter on the
// internet side, and a column list on the intranet side: what a side does
// not select never leaves it, both ways. A second table has other names
// on the intranet side (-rename, -rename-columns), and rows cross both
// ways all the same. A filter that tries to smuggle
// in a statement is refused at start, and nothing is configured or run.
func TestMainsColumnAndRowSelection(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newMySQLZones(t)
	bin, env, inetDSN, intraDSN, inet, intra := z.bin, z.env, z.inetDSN, z.intraDSN, z.inet, z.intra
	for _, db := range []*sql.DB{inet, intra} {
		_, err := db.ExecContext(ctx, "CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR(50) CHARACTER SET utf8mb4, "+
			"password_hash VARCHAR(64), region VARCHAR(10), updated_at DATETIME(6) NOT NULL, KEY (updated_at))")
		is.NoErr(err)
	}
	mustExec := func(db *sql.DB, q string) {
		t.Helper()
		_, err := db.ExecContext(ctx, q)
		is.NoErr(err)
	}
	mustExec(inet, "INSERT INTO users VALUES (1, '北方', 'hash1', 'north', NOW(6)), (2, 'south', 'hash2', 'south', NOW(6))")
	// And a table with other names there: orders(id, note) is ext_orders(order_id, remark).
	mustExec(inet, "CREATE TABLE orders (id BIGINT PRIMARY KEY, note VARCHAR(40), updated_at DATETIME(6) NOT NULL, KEY (updated_at))")
	mustExec(intra, "CREATE TABLE ext_orders (order_id BIGINT PRIMARY KEY, remark VARCHAR(40), updated_at DATETIME(6) NOT NULL, KEY (updated_at))")
	mustExec(inet, "INSERT INTO orders VALUES (10, '外网订单', NOW(6))")
	mustExec(intra, "INSERT INTO ext_orders VALUES (20, '内网订单', NOW(6))")
	mustExec(intra, "INSERT INTO users VALUES (3, 'intra', 'hash3', 'east', NOW(6))")

	const spec = "users:id:updated_at:both"
	out, code := runMain(t, bin, env, "intranet", "-db", intraDSN, "-table", spec, "-columns", "users=name,region",
		"-table", "ext_orders:order_id:updated_at:both")
	is.Equal(code, 0)
	is.True(strings.Contains(out, "users enabled"))
	gw := freeAddr(t)
	startExternal(t, bin, env, gw, intraDSN)

	// The injection attempt: refused before anything is configured.
	out, code = runMain(t, bin, env, "internet", "-db", inetDSN, "-gateway", "http://"+gw, "-once", "-table", spec,
		"-filter", "users=region = 'north'; DROP TABLE users")
	is.True(code != 0)
	is.True(strings.Contains(out, "bad row filter"))
	var n int
	is.NoErr(inet.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n))
	is.Equal(n, 2)

	inetArgs := []string{"-db", inetDSN, "-gateway", "http://" + gw, "-lag", "200ms", "-table", spec,
		"-exclude", "users=password_hash", "-filter", "users=region = 'north' OR region = 'east'",
		"-table", "orders:id:updated_at:both", "-rename", "orders=ext_orders", "-rename-columns", "orders=id:order_id,note:remark"}
	cycle := func() {
		t.Helper()
		time.Sleep(300 * time.Millisecond)
		out, code := runMain(t, bin, env, "internet", append([]string{"-once"}, inetArgs...)...)
		if code != 0 {
			t.Fatalf("internet -once: %d\n%s", code, out)
		}
	}
	cycle()
	cycle()
	get := func(db *sql.DB, id int) (name, hash, region string, ok bool) {
		var h, r sql.NullString
		err := db.QueryRowContext(ctx, "SELECT name, password_hash, region FROM users WHERE id = ?", id).Scan(&name, &h, &r)
		if err == sql.ErrNoRows {
			return "", "", "", false
		}
		is.NoErr(err)
		return name, h.String, r.String, true
	}
	name, hash, region, ok := get(intra, 1)
	is.True(ok)
	is.Equal(name, "北方")
	is.Equal(region, "north")
	is.Equal(hash, "") // excluded on the internet side: never left it
	_, _, _, ok = get(intra, 2)
	is.True(!ok) // outside the internet side's filter
	name, hash, _, ok = get(inet, 3)
	is.True(ok)
	is.Equal(name, "intra")
	is.Equal(hash, "") // the intranet sends only name and region

	var remark, note string
	is.NoErr(intra.QueryRowContext(ctx, "SELECT remark FROM ext_orders WHERE order_id = 10").Scan(&remark))
	is.Equal(remark, "外网订单")
	is.NoErr(inet.QueryRowContext(ctx, "SELECT note FROM orders WHERE id = 20").Scan(&note))
	is.Equal(note, "内网订单")

	// Verification follows the names: the same rows on both sides, then
	// a remark changed on the intranet named as this side's note.
	out, code = runMain(t, bin, env, "internet", append([]string{"-verify=orders"}, inetArgs...)...)
	t.Log(out)
	is.Equal(code, 0)
	is.True(strings.Contains(out, "verify: 1 tables, 2 rows compared, 0 differ"))
	mustExec(intra, "UPDATE ext_orders SET remark = 'edited by hand' WHERE order_id = 10")
	out, code = runMain(t, bin, env, "internet", append([]string{"-verify=orders"}, inetArgs...)...)
	is.Equal(code, 3)
	is.True(strings.Contains(out, "orders\t10\tdifferent on intranet\tnote"))
}

// mysqlZones are the two zones' fresh MariaDB databases, open, and the
// mains built with a fresh key in their environment.
type mysqlZones struct {
	bin, inetDSN, intraDSN string
	env                    []string
	inet, intra            *sql.DB
}

func newMySQLZones(t *testing.T) mysqlZones {
	t.Helper()
	z := mysqlZones{inetDSN: testdb.MySQL(t), intraDSN: testdb.MySQL(t)}
	z.bin = buildMains(t, "internet", "external", "intranet")
	key, err := crypto.GenerateKey("zones")
	if err != nil {
		t.Fatal(err)
	}
	z.env = append(os.Environ(), "GAPSYNC_KEYS="+key.Encode())
	for _, x := range []struct {
		dsn string
		db  **sql.DB
	}{{z.inetDSN, &z.inet}, {z.intraDSN, &z.intra}} {
		db, err := sql.Open("mysql", x.dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		*x.db = db
	}
	return z
}
