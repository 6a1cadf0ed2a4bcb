package syncer_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// Wiring the three zones: the internet database feeds a Coordinator, which
// talks sealed HTTP to a Gateway, which writes into the intranet database.
// In a deployment each zone is its own process (see examples/).
func ExampleCoordinator() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gapsync-example-")
	defer os.RemoveAll(dir)

	orders := gapsync.Table{Name: "orders", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
	open := func(name string) *storage.DB {
		db, err := storage.OpenSQLite(filepath.Join(dir, name), &storage.Options{Lag: time.Millisecond})
		if err != nil {
			panic(err)
		}
		db.Migrate(ctx)
		db.Bun().ExecContext(ctx, "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT, updated_at DATETIME)")
		db.Configure(ctx, orders) // both sides must enable the table
		return db
	}
	internet, intranet := open("internet.db"), open("intranet.db")
	defer internet.Close()
	defer intranet.Close()
	internet.Bun().ExecContext(ctx, "INSERT INTO orders VALUES (1, '变压器', '2026-01-01 08:00:00'), (2, 'cable 🔌', '2026-01-01 08:00:01')")

	key, _ := crypto.GenerateKey("k1")
	keys, _ := crypto.NewKeyring(key) // both zones hold the same keyring

	gateway, err := syncer.NewGateway(intranet, keys, nil) // external zone
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(gateway)
	defer srv.Close()

	client, _ := transport.NewClient(srv.URL, keys, nil) // internet zone
	coord, _ := syncer.NewCoordinator(internet, client, nil)
	report, err := coord.RunOnce(ctx)
	if err != nil {
		panic(err)
	}
	var item string
	intranet.Bun().QueryRowContext(ctx, "SELECT item FROM orders WHERE id = 1").Scan(&item)
	fmt.Println("pushed", report.Rows(gapsync.Push), "rows; intranet order 1 is", item)
	// Output: pushed 2 rows; intranet order 1 is 变压器
}
