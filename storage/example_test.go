package storage_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

// Open takes a MySQL/MariaDB DSN (user:password@tcp(host:3306)/app), a
// postgres:// URL, or sqlite:PATH; Migrate creates the sync metadata
// tables; Configure enables a table in sync_config (both sides must),
// refusing a name that is no plain identifier.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gapsync-example-")
	defer os.RemoveAll(dir)

	db, err := storage.Open("sqlite:"+filepath.Join(dir, "app.db"), nil)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		panic(err)
	}
	db.Bun().ExecContext(ctx, "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT, updated_at DATETIME)")

	orders, _ := gapsync.ParseTable("orders:id:updated_at:both")
	if err := db.Configure(ctx, orders); err != nil {
		panic(err)
	}
	tables, _ := db.Config(ctx)
	for _, t := range tables {
		fmt.Println(db.Dialect(), t.Name, t.Direction, t.Enabled)
	}

	err = db.Configure(ctx, gapsync.Table{Name: "orders; DROP TABLE orders", Key: []string{"id"}, Cursor: "updated_at"})
	fmt.Println(errors.Is(err, gapsync.ErrBadIdentifier))
	// Output:
	// sqlite orders both true
	// true
}
