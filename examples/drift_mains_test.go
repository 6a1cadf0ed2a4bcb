package examples_test

import (
	"context"
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/matryer/is"
)

// TestMainsSchemaDrift runs the zone mains as processes while an
// application writes throughout. A column added on the internet side only
// does not stop the table: the shared columns keep arriving, a metric and
// the log name the column and the ALTER TABLE to run. Once the intranet
// has the column too, its values arrive for every row, also those sent
// before. A column then dropped on the internet side only parks the table
// with the fix, and nothing of it is written there.
func TestMainsSchemaDrift(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	z := newMySQLZones(t)
	bin, env, inetDSN, intraDSN, inet, intra := z.bin, z.env, z.inetDSN, z.intraDSN, z.inet, z.intra
	var err error
	const ddl = "CREATE TABLE orders (id BIGINT PRIMARY KEY, name VARCHAR(50) CHARACTER SET utf8mb4, qty INT, " +
		"updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6), KEY (updated_at))"
	for _, db := range []*sql.DB{inet, intra} {
		_, err := db.ExecContext(ctx, ddl)
		is.NoErr(err)
	}
	out, code := runMain(t, bin, env, "intranet", "-db", intraDSN, "-table", "orders:id:updated_at")
	is.Equal(code, 0)
	is.True(strings.Contains(out, "orders enabled"))
	gw, metricsAddr := freeAddr(t), freeAddr(t)
	startExternal(t, bin, env, gw, intraDSN)
	cmd := exec.Command(filepath.Join(bin, "internet"), "-db", inetDSN, "-gateway", "http://"+gw, "-table", "orders:id:updated_at",
		"-lag", "200ms", "-interval", "300ms", "-metrics", metricsAddr)
	cmd.Env = env
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	is.NoErr(cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	// The application: a new order every few milliseconds and an update
	// of an older one; with the note column once it exists.
	var (
		mu      sync.Mutex
		noted   bool
		wg      sync.WaitGroup
		stopApp = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for id := 1; ; id++ {
			select {
			case <-stopApp:
				return
			case <-time.After(15 * time.Millisecond):
			}
			mu.Lock()
			withNote := noted
			mu.Unlock()
			var err error
			if withNote {
				_, err = inet.ExecContext(ctx, "INSERT INTO orders (id, name, qty, note) VALUES (?, ?, ?, ?)", id, fmt.Sprintf("订单 %d", id), id, fmt.Sprintf("note %d", id))
				if err == nil && id > 5 {
					_, err = inet.ExecContext(ctx, "UPDATE orders SET qty = qty + 1, note = CONCAT('updated ', id) WHERE id = ?", id-5)
				}
			} else {
				_, err = inet.ExecContext(ctx, "INSERT INTO orders (id, name, qty) VALUES (?, ?, ?)", id, fmt.Sprintf("订单 %d", id), id)
				if err == nil && id > 5 {
					_, err = inet.ExecContext(ctx, "UPDATE orders SET qty = qty + 1 WHERE id = ?", id-5)
				}
			}
			if err != nil {
				t.Errorf("application write: %v", err)
				return
			}
		}
	}()
	count := func(db *sql.DB, q string) int {
		t.Helper()
		var n int
		is.NoErr(db.QueryRowContext(ctx, q).Scan(&n))
		return n
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("gave up waiting for %s; internet said:\n%s", what, logs.String())
	}
	waitFor("the first rows", func() bool { return count(intra, "SELECT COUNT(*) FROM orders") >= 20 })

	_, err = inet.ExecContext(ctx, "ALTER TABLE orders ADD COLUMN note VARCHAR(40) NULL")
	is.NoErr(err)
	mu.Lock()
	noted = true
	mu.Unlock()
	altered := count(inet, "SELECT MAX(id) FROM orders")
	// The shared columns go on.
	waitFor("rows written after the ALTER", func() bool {
		return count(intra, fmt.Sprintf("SELECT COUNT(*) FROM orders WHERE id > %d", altered+20)) > 0
	})
	waitFor("the missing column's gauge", func() bool {
		return strings.Contains(scrape(t, metricsAddr), `gapsync_table_missing_column{column="note",direction="push",table="orders"} 1`)
	})
	is.True(strings.Contains(logs.String(), "ALTER TABLE `orders` ADD COLUMN `note` varchar(40)"))

	// The intranet gets the column; every row's note arrives.
	_, err = intra.ExecContext(ctx, "ALTER TABLE orders ADD COLUMN note VARCHAR(40) NULL")
	is.NoErr(err)
	time.Sleep(500 * time.Millisecond)
	close(stopApp)
	wg.Wait()
	const rowsQ = "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', id, name, qty, IFNULL(note, '-'), updated_at))), 0) FROM orders"
	sums := func(db *sql.DB) string {
		var n, sum int64
		is.NoErr(db.QueryRowContext(ctx, rowsQ).Scan(&n, &sum))
		return fmt.Sprint(n, " ", sum)
	}
	waitFor("equal tables", func() bool { return sums(inet) == sums(intra) })
	is.True(count(intra, "SELECT COUNT(*) FROM orders WHERE note IS NOT NULL") > 0)
	waitFor("the gauge to go", func() bool { return !strings.Contains(scrape(t, metricsAddr), "gapsync_table_missing_column{") })

	// A column dropped here only: parked with the fix, nothing written there.
	_, err = inet.ExecContext(ctx, "ALTER TABLE orders DROP COLUMN qty")
	is.NoErr(err)
	_, err = inet.ExecContext(ctx, "UPDATE orders SET name = 'after the drop' WHERE id = 1")
	is.NoErr(err)
	waitFor("the table to park", func() bool {
		out, _ := runMain(t, bin, env, "internet", "-db", inetDSN, "-status")
		return strings.Contains(out, "parked") && strings.Contains(out, "DROP COLUMN `qty`")
	})
	is.Equal(count(intra, "SELECT COUNT(*) FROM orders WHERE name = 'after the drop'"), 0)
}

// syncBuffer is a strings.Builder that a process's output and the test
// may use at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
