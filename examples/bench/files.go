package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/syncer"
)

// stageBound measures what the file pipeline cannot beat on this server:
// raw prepared BLOB inserts and reads of the same bytes (the file's own:
// the server and disk handle random bytes more slowly than a pattern), at
// the same chunk size and concurrency. The pipeline writes each byte into
// two databases and reads it from both, so its bound is twice one insert
// plus one read.
func stageBound(base, file string, chunk int64, conc int) (time.Duration, error) {
	dsn, err := fresh(base, "gapsync_bench_bound")
	if err != nil {
		return 0, err
	}
	if err := execSQL(dsn, "CREATE TABLE bound_chunk (id INT PRIMARY KEY, data LONGBLOB NOT NULL)"); err != nil {
		return 0, err
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	n := int((info.Size() + chunk - 1) / chunk)
	start := time.Now()
	var g errgroup.Group
	for w := 0; w < conc; w++ {
		g.Go(func() error {
			buf := make([]byte, chunk)
			for i := w; i < n; i += conc {
				k, err := f.ReadAt(buf, int64(i)*chunk)
				if err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				if _, err := db.Exec("INSERT INTO bound_chunk VALUES (?, ?)", i, buf[:k]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	for w := 0; w < conc; w++ {
		g.Go(func() error {
			var data []byte
			for i := w; i < n; i += conc {
				if err := db.QueryRow("SELECT data FROM bound_chunk WHERE id = ?", i).Scan(&data); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return 2 * time.Since(start), nil
}

// smallFilesCase sends n files of size bytes, each referenced by a row,
// from the internet store to the intranet store, and returns the time
// from the first cycle to the last file published.
func smallFilesCase(ctx context.Context, base string, n, size int) (time.Duration, error) {
	inetDSN, err := fresh(base, "gapsync_bench_internet")
	if err != nil {
		return 0, err
	}
	intraDSN, err := fresh(base, "gapsync_bench_intranet")
	if err != nil {
		return 0, err
	}
	const ddl = "CREATE TABLE docs (id BIGINT PRIMARY KEY, path VARCHAR(300), updated_at DATETIME(6), KEY (updated_at), KEY (path))"
	for _, d := range []string{inetDSN, intraDSN} {
		if err := execSQL(d, ddl); err != nil {
			return 0, err
		}
	}
	work, err := os.MkdirTemp("", "gapsync-bench-small-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	inetStore, err := localstore.New(filepath.Join(work, "internet"), nil)
	if err != nil {
		return 0, err
	}
	intraStore, err := localstore.New(filepath.Join(work, "intranet"), nil)
	if err != nil {
		return 0, err
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for i := 0; i < n; i++ {
		data[0], data[1] = byte(i), byte(i>>8) // distinct content
		name := "small/" + strconv.Itoa(i%100) + "/" + strconv.Itoa(i) + ".bin"
		if err := os.MkdirAll(filepath.Join(work, "internet", filepath.Dir(name)), 0o755); err != nil {
			return 0, err
		}
		if err := os.WriteFile(filepath.Join(work, "internet", name), data, 0o644); err != nil {
			return 0, err
		}
	}
	if err := execSQL(inetDSN, fmt.Sprintf(`INSERT INTO docs SELECT seq - 1, CONCAT('small/', (seq - 1) %% 100, '/', seq - 1, '.bin'),
		NOW(6) - INTERVAL 1 MINUTE FROM seq_1_to_%d`, n)); err != nil {
		return 0, err
	}
	docs := gapsync.Table{Name: "docs", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", FileColumns: []string{"path"}, Enabled: true}
	z, w, err := newRowZones(inetDSN, intraDSN, time.Second,
		&syncer.FileOptions{Store: inetStore}, &syncer.FileOptions{Store: intraStore})
	if err != nil {
		return 0, err
	}
	defer z.Close()
	for _, db := range []interface {
		Configure(context.Context, gapsync.Table) error
	}{z.inet, z.intra} {
		if err := db.Configure(ctx, docs); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	published := 0
	for round := 0; round < 20 && published < n; round++ {
		if _, err := z.coord.RunOnce(ctx); err != nil {
			return 0, err
		}
		r, err := w.RunOnce(ctx)
		if err != nil {
			return 0, err
		}
		published += r.Published
	}
	if published != n {
		return 0, fmt.Errorf("published %d of %d small files", published, n)
	}
	return time.Since(start), nil
}
