package syncer_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/internal/testdb"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// BenchmarkIncrementalNewest is one cycle that moves the newest 10,000
// rows of a 1,000,000-row MariaDB table changed since the last (issue 16:
// at most 0.2 s), each way, in one process over a loopback gateway; the
// first load and each change are outside the timer.
//
//	go test -run '^$' -bench IncrementalNewest -benchtime 5x ./syncer/
func BenchmarkIncrementalNewest(b *testing.B) {
	for _, d := range []gapsync.Direction{gapsync.Push, gapsync.Pull} {
		b.Run(string(d), func(b *testing.B) { benchNewest(b, d) })
	}
}

// The table and rows of examples/bench's rows case (about 200 bytes a
// row), made the same way.
const (
	newestDDL = `CREATE TABLE load_rows (
	id BIGINT NOT NULL PRIMARY KEY,
	name VARCHAR(64) NOT NULL,
	amount DECIMAL(14,2) NOT NULL,
	qty INT NOT NULL,
	ratio DOUBLE NOT NULL,
	flag TINYINT NOT NULL,
	note VARCHAR(120) NULL,
	updated_at DATETIME(6) NOT NULL,
	KEY ix_load_rows_updated_at (updated_at)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`
	newestFill = `INSERT INTO load_rows
	SELECT seq, CONCAT('customer-', LPAD(seq, 10, '0'), '-', SUBSTR(MD5(seq), 1, 24)),
	       (seq * 7919 % 1000000) / 100, seq % 100000, seq / 7.0, seq % 2,
	       CONCAT('订单备注 note ', SHA1(seq), ' ', SUBSTR(MD5(seq * 3), 1, 20)),
	       NOW(6) - INTERVAL 1 MINUTE
	FROM seq_1_to_1000000`
)

func benchNewest(b *testing.B, dir gapsync.Direction) {
	const rows, changed = 1_000_000, 10_000
	tb := gapsync.Table{Name: "load_rows", Direction: dir, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
	ctx := context.Background()
	keys := benchKeys(b)
	open := func() *storage.DB { return benchMySQL(b, newestDDL, tb) }
	inet, intra := open(), open()
	src := inet
	if dir == gapsync.Pull {
		src = intra
	}
	if _, err := src.Bun().ExecContext(ctx, newestFill); err != nil {
		b.Fatal(err)
	}
	client, stop := benchGateway(b, intra, keys)
	defer stop()
	coord, err := syncer.NewCoordinator(inet, client, nil)
	if err != nil {
		b.Fatal(err)
	}
	if r, err := coord.RunOnce(ctx); err != nil || r.Rows(dir) != rows {
		b.Fatalf("first load: %v", err)
	}
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		if _, err := src.Bun().ExecContext(ctx, "UPDATE load_rows SET qty = qty + 1, updated_at = NOW(6) WHERE id > ?", rows-changed); err != nil {
			b.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // past the lag
		b.StartTimer()
		r, err := coord.RunOnce(ctx)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if n := r.Rows(dir); n != changed {
			b.Fatalf("moved %d rows, want %d", n, changed)
		}
		b.StartTimer()
	}
}

// benchKeys is a keyring of one new key.
func benchKeys(b *testing.B) *crypto.Keyring {
	key, err := crypto.GenerateKey("bench1")
	if err != nil {
		b.Fatal(err)
	}
	keys, err := crypto.NewKeyring(key)
	if err != nil {
		b.Fatal(err)
	}
	return keys
}

// benchMySQL opens a fresh MariaDB database with the metadata tables,
// the table made by ddl, and tb configured.
func benchMySQL(b *testing.B, ddl string, tb gapsync.Table) *storage.DB {
	ctx := context.Background()
	db, err := storage.OpenMySQL(testdb.MySQL(b), &storage.Options{Lag: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if _, err := db.Bun().ExecContext(ctx, ddl); err != nil {
		b.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if err := db.Configure(ctx, tb); err != nil {
		b.Fatal(err)
	}
	return db
}

// benchGateway serves a gateway over intra on loopback HTTP and returns
// a client of it, and what stops both.
func benchGateway(b *testing.B, intra *storage.DB, keys *crypto.Keyring) (*transport.Client, func()) {
	gw, err := syncer.NewGateway(intra, keys, nil)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: gw}
	go srv.Serve(ln)
	client, err := transport.NewClient("http://"+ln.Addr().String(), keys, nil)
	if err != nil {
		srv.Close()
		b.Fatal(err)
	}
	return client, func() { client.Close(); srv.Close() }
}
