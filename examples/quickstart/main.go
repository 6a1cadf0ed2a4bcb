// Command quickstart runs all three zones of gapsync in one process on the
// embedded default: two SQLite files (the internet and intranet
// databases), the external-zone gateway on loopback HTTP, and the internet
// coordinator. It creates a demo table with varied rows, syncs it to the
// intranet, changes rows on both sides (and deletes one on the intranet),
// syncs again both ways, checks that the two tables are equal, and prints
// a last line that begins "quickstart: OK".
//
//	go run ./examples/quickstart            # fresh temporary directory
//	go run ./examples/quickstart -dir data  # keep the databases; re-runnable
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart: FAILED:", err)
		os.Exit(1)
	}
}

var demo = gapsync.Table{Name: "demo", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}

const demoDDL = `CREATE TABLE IF NOT EXISTS demo (
	id INTEGER PRIMARY KEY,
	title TEXT NOT NULL,
	note TEXT NULL,
	amount NUMERIC NULL,
	ratio REAL NULL,
	payload BLOB NULL,
	updated_at DATETIME NOT NULL)`

func run(ctx context.Context) error {
	dir := flag.String("dir", "", "directory for the two SQLite files (default: a new temporary directory, removed at exit)")
	verbose := flag.Bool("v", false, "log every step")
	flag.Parse()
	kept := "kept in " + *dir
	if *dir == "" {
		kept = "temporary, removed"
		d, err := os.MkdirTemp("", "gapsync-quickstart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	} else if err := os.MkdirAll(*dir, 0o750); err != nil {
		return err
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// Internet zone database and intranet zone database.
	dbOpts := &storage.Options{Logger: logger, Lag: 50 * time.Millisecond}
	internet, err := storage.OpenSQLite(filepath.Join(*dir, "internet.db"), dbOpts)
	if err != nil {
		return err
	}
	defer internet.Close()
	intranet, err := storage.OpenSQLite(filepath.Join(*dir, "intranet.db"), dbOpts)
	if err != nil {
		return err
	}
	defer intranet.Close()
	for _, db := range []*storage.DB{internet, intranet} {
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		if _, err := db.Bun().ExecContext(ctx, demoDDL); err != nil {
			return err
		}
		// Both sides must name a table in sync_config before it moves.
		if err := db.Configure(ctx, demo); err != nil {
			return err
		}
		// A trigger-fed tombstone table lets hard deletes travel.
		if err := db.InstallTombstones(ctx, demo); err != nil {
			return err
		}
	}

	// One shared key: in a deployment it comes from GAPSYNC_KEYS on both
	// the internet and the external zone.
	key, err := crypto.GenerateKey("quickstart")
	if err != nil {
		return err
	}
	keys, err := crypto.NewKeyring(key)
	if err != nil {
		return err
	}

	// External zone: the gateway, on loopback HTTP.
	gw, err := syncer.NewGateway(intranet, keys, &syncer.GatewayOptions{Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: gw, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	// Internet zone: the coordinator.
	client, err := transport.NewClient("http://"+ln.Addr().String(), keys, &transport.ClientOptions{Logger: logger})
	if err != nil {
		return err
	}
	defer client.Close()
	coord, err := syncer.NewCoordinator(internet, client, &syncer.CoordinatorOptions{Logger: logger, Page: gapsync.Page{Rows: 100}})
	if err != nil {
		return err
	}

	// Varied rows: Chinese and emoji, NULL next to the empty string, a
	// 64 KiB blob with NUL bytes, extreme numbers.
	now := "strftime('%Y-%m-%d %H:%M:%f', 'now')"
	var base int64
	if err := internet.Bun().QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM demo").Scan(&base); err != nil {
		return err
	}
	blob := make([]byte, 64<<10)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	rows := [][]any{
		{"电力调度 日报", "中文内容", "12345.6789", 0.1, blob},
		{"emoji 🚀🔒", "", "-0.000001", -1.5e-300, []byte{}},
		{"nulls", nil, nil, nil, nil},
		{"quotes ' \" ` \\", "tab\tnewline\n", "9223372036854775807", 1.7976931348623157e308, []byte{0, 0, 0}},
	}
	for i := 0; i < 200; i++ {
		rows = append(rows, []any{fmt.Sprintf("row %d", i), fmt.Sprintf("第%d行", i), i, float64(i) / 3, nil})
	}
	for i, r := range rows {
		if _, err := internet.Bun().DB.ExecContext(ctx, "INSERT INTO demo (id, title, note, amount, ratio, payload, updated_at) VALUES (?, ?, ?, ?, ?, ?, "+now+")",
			append([]any{base + int64(i) + 1}, r...)...); err != nil {
			return err
		}
	}
	time.Sleep(100 * time.Millisecond) // past the window lag

	first, err := coord.RunOnce(ctx)
	if err != nil {
		return err
	}
	if err := same(ctx, internet, intranet); err != nil {
		return err
	}

	// Change rows on both sides, delete one on the intranet, and sync
	// again: only those travel, each in its own direction.
	if _, err := internet.Bun().DB.ExecContext(ctx, "UPDATE demo SET note = 'updated on the internet 互联网', updated_at = "+now+" WHERE id > ? AND id <= ?", base, base+5); err != nil {
		return err
	}
	if _, err := intranet.Bun().DB.ExecContext(ctx, "UPDATE demo SET note = 'updated on the intranet 内网', updated_at = "+now+" WHERE id > ? AND id <= ?", base+10, base+13); err != nil {
		return err
	}
	if _, err := intranet.Bun().DB.ExecContext(ctx, "DELETE FROM demo WHERE id = ?", base+20); err != nil {
		return err
	}
	time.Sleep(100 * time.Millisecond)
	second, err := coord.RunOnce(ctx)
	if err != nil {
		return err
	}
	if err := same(ctx, internet, intranet); err != nil {
		return err
	}
	if second.Rows(gapsync.Push) != 5 || second.Rows(gapsync.Pull) != 4 {
		return fmt.Errorf("second cycle moved %d rows out and %d back, want the 5 and 4 changed ones", second.Rows(gapsync.Push), second.Rows(gapsync.Pull))
	}
	// A quiet cycle: nothing echoes back.
	third, err := coord.RunOnce(ctx)
	if err != nil {
		return err
	}
	if third.Rows("") != 0 {
		return fmt.Errorf("a quiet cycle moved %d rows", third.Rows(""))
	}
	logged, err := internet.Log(ctx, "demo", 0)
	if err != nil {
		return err
	}
	_, total, _ := intranet.Checksum(ctx, demo)
	fmt.Printf("quickstart: OK internet→intranet %d rows (%d inserted, then %d updated); intranet→internet %d rows (3 updated, 1 deleted); "+
		"both demo tables hold the same %d rows (checksum); quiet cycle moved 0; %d runs in sync_log; databases %s\n",
		first.Rows(gapsync.Push)+second.Rows(gapsync.Push), first.Rows(gapsync.Push), second.Rows(gapsync.Push), second.Rows(gapsync.Pull),
		total, len(logged), kept)
	return nil
}

// same compares the demo table on both sides by checksum.
func same(ctx context.Context, a, b *storage.DB) error {
	ha, na, err := a.Checksum(ctx, demo)
	if err != nil {
		return err
	}
	hb, nb, err := b.Checksum(ctx, demo)
	if err != nil {
		return err
	}
	if ha != hb || na != nb {
		return fmt.Errorf("intranet demo (%d rows) differs from internet demo (%d rows)", nb, na)
	}
	return nil
}
