// Command quickstart runs all three zones of gapsync in one process on the
// embedded default: two SQLite files (the internet and intranet
// databases), two local directories (their file stores), the
// external-zone gateway on loopback HTTP, the internet coordinator and the
// intranet worker. It creates a demo table with varied rows and a table of
// attachments, syncs them, changes rows on both sides (and deletes one on
// the intranet), attaches files on both sides, syncs again both ways,
// checks that the tables agree and every file arrived byte for byte, and
// prints a last line that begins "quickstart: OK".
//
//	go run ./examples/quickstart            # fresh temporary directory
//	go run ./examples/quickstart -dir data  # keep everything; re-runnable
//	go run ./examples/quickstart -cipher sm4  # envelopes sealed with SM4-GCM
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/localstore"
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

var (
	demo = gapsync.Table{Name: "demo", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}
	// attachments reference files; the file flow moves them and rewrites
	// the references to each side's own address.
	attachments = gapsync.Table{Name: "attachments", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at",
		FileColumns: []string{"path"}, Enabled: true}
)

const ddl = `CREATE TABLE IF NOT EXISTS demo (
	id INTEGER PRIMARY KEY,
	title TEXT NOT NULL,
	note TEXT NULL,
	amount NUMERIC NULL,
	ratio REAL NULL,
	payload BLOB NULL,
	updated_at DATETIME NOT NULL);
CREATE TABLE IF NOT EXISTS attachments (
	id INTEGER PRIMARY KEY,
	path TEXT NOT NULL,
	updated_at DATETIME NOT NULL)`

const now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"

func run(ctx context.Context) error {
	dir := flag.String("dir", "", "directory for the databases and stores (default: a new temporary directory, removed at exit)")
	verbose := flag.Bool("v", false, "log every step")
	cipherName := flag.String("cipher", "aes", "the shared key's cipher: aes (AES-256-GCM) or sm4 (SM4-GCM)")
	flag.Parse()
	cipher, err := crypto.ParseCipher(*cipherName)
	if err != nil {
		return err
	}
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

	// The internet and intranet databases, and their file stores.
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
		for _, q := range strings.Split(ddl, ";") {
			if _, err := db.Bun().ExecContext(ctx, q); err != nil {
				return err
			}
		}
		for _, t := range []gapsync.Table{demo, attachments} {
			// Both sides must name a table in sync_config before it moves;
			// a trigger-fed tombstone table lets hard deletes travel.
			if err := db.Configure(ctx, t); err != nil {
				return err
			}
			if err := db.InstallTombstones(ctx, t); err != nil {
				return err
			}
		}
	}
	inetFiles, err := localstore.New(filepath.Join(*dir, "internet-files"), nil)
	if err != nil {
		return err
	}
	intraFiles, err := localstore.New(filepath.Join(*dir, "intranet-files"), nil)
	if err != nil {
		return err
	}

	// One shared key: in a deployment it comes from GAPSYNC_KEYS on both
	// the internet and the external zone.
	key, err := crypto.GenerateCipherKey(cipher, "quickstart")
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

	// Internet zone: the coordinator. Intranet zone: the worker.
	client, err := transport.NewClient("http://"+ln.Addr().String(), keys, &transport.ClientOptions{Logger: logger})
	if err != nil {
		return err
	}
	defer client.Close()
	coord, err := syncer.NewCoordinator(internet, client, &syncer.CoordinatorOptions{
		Logger: logger, Page: gapsync.Page{Rows: 100}, Files: &syncer.FileOptions{Store: inetFiles, ChunkSize: 64 << 10},
	})
	if err != nil {
		return err
	}
	worker, err := syncer.NewIntranetWorker(intranet, &syncer.WorkerOptions{
		Logger: logger, Files: syncer.FileOptions{Store: intraFiles, ChunkSize: 64 << 10},
	})
	if err != nil {
		return err
	}
	cycle := func() (*syncer.Report, error) {
		time.Sleep(100 * time.Millisecond) // past the window lag
		r, err := coord.RunOnce(ctx)
		if err != nil {
			return r, err
		}
		_, err = worker.RunOnce(ctx)
		return r, err
	}

	// Varied rows: Chinese and emoji, NULL next to the empty string, a
	// 64 KiB blob with NUL bytes, extreme numbers.
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
		if err := exec(ctx, internet, "INSERT INTO demo (id, title, note, amount, ratio, payload, updated_at) VALUES (?, ?, ?, ?, ?, ?, "+now+")",
			append([]any{base + int64(i) + 1}, r...)...); err != nil {
			return err
		}
	}
	// Files on the internet side, referenced by rows: a 1 MiB report (16
	// chunks of 64 KiB), an empty file, a name in Chinese with an emoji.
	files := map[string][]byte{}
	for i, name := range []string{"reports/月报 2026 📈.pdf", "empty.txt", "photos/substation one.jpg"} {
		data := make([]byte, []int{1 << 20, 0, 200_000}[i])
		for j := range data {
			data[j] = byte(j*31 + i)
		}
		name = fmt.Sprintf("%d/%s", base, name)
		files[name] = data
		if err := inetFiles.Put(ctx, name, strings.NewReader(string(data)), int64(len(data)), syncer.FileInfo{}); err != nil {
			return err
		}
		if err := exec(ctx, internet, "INSERT INTO attachments (id, path, updated_at) VALUES (?, ?, "+now+")", base+int64(i)+1, name); err != nil {
			return err
		}
	}

	first, err := cycle()
	if err != nil {
		return err
	}

	// Change rows on both sides, delete one on the intranet, attach a file
	// there, and sync again: only those travel, each in its own direction.
	if err := exec(ctx, internet, "UPDATE demo SET note = 'updated on the internet 互联网', updated_at = "+now+" WHERE id > ? AND id <= ?", base, base+5); err != nil {
		return err
	}
	if err := exec(ctx, intranet, "UPDATE demo SET note = 'updated on the intranet 内网', updated_at = "+now+" WHERE id > ? AND id <= ?", base+10, base+13); err != nil {
		return err
	}
	if err := exec(ctx, intranet, "DELETE FROM demo WHERE id = ?", base+20); err != nil {
		return err
	}
	inName := fmt.Sprintf("%d/scans/巡检记录.png", base)
	files[inName] = []byte(strings.Repeat("intranet scan ", 5000))
	if err := intraFiles.Put(ctx, inName, strings.NewReader(string(files[inName])), int64(len(files[inName])), syncer.FileInfo{}); err != nil {
		return err
	}
	if err := exec(ctx, intranet, "INSERT INTO attachments (id, path, updated_at) VALUES (?, ?, "+now+")", base+100, inName); err != nil {
		return err
	}
	second, err := cycle() // rows both ways; the worker reads the intranet file in
	if err != nil {
		return err
	}
	third, err := cycle() // the intranet file crosses and is published here
	if err != nil {
		return err
	}
	quiet, err := cycle()
	if err != nil {
		return err
	}

	// Check: the demo tables are equal; every file arrived byte for byte
	// and its rows point at the local copy on the far side.
	if err := same(ctx, internet, intranet); err != nil {
		return err
	}
	if second.Rows(gapsync.Push) != 5 || second.Rows(gapsync.Pull) != 5 {
		return fmt.Errorf("second cycle moved %d rows out and %d back, want 5 and 5", second.Rows(gapsync.Push), second.Rows(gapsync.Pull))
	}
	if quiet.Rows("") != 0 {
		return fmt.Errorf("a quiet cycle moved %d rows", quiet.Rows(""))
	}
	for name, data := range files {
		to, far, side, farDB := intraFiles, "from-internet/"+name, "internet", intranet
		if name == inName {
			to, far, side, farDB = inetFiles, "from-intranet/"+name, "intranet", internet
		}
		if got := digest(ctx, to, far); got != fmt.Sprintf("%x", sha256.Sum256(data)) {
			return fmt.Errorf("%s file %s did not arrive intact on the far side (%s)", side, name, got)
		}
		var n int
		if err := farDB.Bun().QueryRowContext(ctx, "SELECT COUNT(*) FROM attachments WHERE path = ?", far).Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("the far row of %s does not point at %s (%v)", name, far, err)
		}
	}
	logged, err := internet.Log(ctx, "", 0)
	if err != nil {
		return err
	}
	_, total, _ := intranet.Checksum(ctx, demo)
	fmt.Printf("quickstart: OK internet→intranet %d rows (%d demo rows inserted, 5 updated, %d attachment rows) and %d files; "+
		"intranet→internet %d rows (3 updated, 1 deleted, 1 attachment row) and 1 file; "+
		"both demo tables hold the same %d rows (checksum); every file arrived intact (SHA-256) and its far rows point at the local copy; "+
		"quiet cycle moved 0; %d runs in sync_log; %d envelopes sealed with %v; data %s\n",
		first.Rows(gapsync.Push)+second.Rows(gapsync.Push)+third.Rows(gapsync.Push), len(rows), len(files)-1, len(files)-1,
		second.Rows(gapsync.Pull)+third.Rows(gapsync.Pull), total, len(logged), keys.Sealed(), keys.ActiveCipher(), kept)
	return nil
}

func exec(ctx context.Context, db *storage.DB, q string, args ...any) error {
	_, err := db.Bun().DB.ExecContext(ctx, q, args...)
	return err
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

// digest is the SHA-256 of a stored file, or why there is none.
func digest(ctx context.Context, st syncer.FileStore, key string) string {
	info, err := st.Stat(ctx, key)
	if err != nil {
		return err.Error()
	}
	rc, err := st.OpenRange(ctx, key, 0, info.Size)
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
