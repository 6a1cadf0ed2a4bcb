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
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gapsync/gapsync"
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

// fileZones creates the two zone databases with the docs table (a
// reference column, indexed as README asks), a store directory for each
// side, and starts the zones with docs synced in direction dir. The
// source side is the internet for a push, the intranet for a pull; it
// returns the source's DSN and store directory beside the zones, and
// done, which stops the zones and removes the stores.
func fileZones(b *bench, dir gapsync.Direction) (z *procZones, srcDSN, srcStore string, done func(), err error) {
	bin, err := b.mains()
	if err != nil {
		return
	}
	work, err := os.MkdirTemp("", "gapsync-bench-stores-")
	if err != nil {
		return
	}
	done = func() {
		if z != nil {
			z.stop()
		}
		os.RemoveAll(work)
	}
	inetDSN, err := fresh(b.dsn, "gapsync_bench_internet")
	if err != nil {
		return
	}
	intraDSN, err := fresh(b.dsn, "gapsync_bench_intranet")
	if err != nil {
		return
	}
	const ddl = "CREATE TABLE docs (id BIGINT PRIMARY KEY, path VARCHAR(300), updated_at DATETIME(6), KEY (updated_at), KEY (path))"
	for _, d := range []string{inetDSN, intraDSN} {
		if err = execSQL(d, ddl); err != nil {
			return
		}
	}
	inetStore, intraStore := filepath.Join(work, "internet"), filepath.Join(work, "intranet")
	for _, d := range []string{inetStore, intraStore} {
		if err = os.MkdirAll(d, 0o755); err != nil {
			return
		}
	}
	srcDSN, srcStore = inetDSN, inetStore
	if dir == gapsync.Pull {
		srcDSN, srcStore = intraDSN, intraStore
	}
	z, err = startZones(bin, "docs:id:updated_at:"+string(dir)+":path", inetDSN, intraDSN, inetStore, intraStore)
	return
}

// published is where the receiving side publishes the source's key.
func published(z *procZones, dir gapsync.Direction, key string) string {
	if dir == gapsync.Pull {
		return filepath.Join(z.inetStore, "from-intranet", key)
	}
	return filepath.Join(z.intraDir, "from-internet", key)
}

// smallCases runs the small-files case in each direction.
func smallCases(ctx context.Context, b *bench) error {
	fmt.Printf("| many small files, 8 KiB each | files | time | files/s | runs (each a process) | peak RSS internet | peak RSS external | peak RSS intranet |\n|---|---|---|---|---|---|---|---|\n")
	for _, dir := range b.directions {
		if err := settle(b.dsn); err != nil {
			return err
		}
		if err := smallFilesCase(b, dir, b.nsmall, 8<<10); err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
	}
	fmt.Println()
	return nil
}

// smallFilesCase sends n files of size bytes, each referenced by a row,
// from the source side's store to the other's, and prints the time from
// the first cycle to the last file published.
func smallFilesCase(b *bench, dir gapsync.Direction, n, size int) error {
	z, srcDSN, srcStore, done, err := fileZones(b, dir)
	if done != nil {
		defer done()
	}
	if err != nil {
		return err
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for i := 0; i < n; i++ {
		data[0], data[1] = byte(i), byte(i>>8) // distinct content
		name := "small/" + strconv.Itoa(i%100) + "/" + strconv.Itoa(i) + ".bin"
		if err := os.MkdirAll(filepath.Join(srcStore, filepath.Dir(name)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(srcStore, name), data, 0o644); err != nil {
			return err
		}
	}
	if err := execSQL(srcDSN, fmt.Sprintf(`INSERT INTO docs SELECT seq - 1, CONCAT('small/', (seq - 1) %% 100, '/', seq - 1, '.bin'),
		NOW(6) - INTERVAL 1 MINUTE FROM seq_1_to_%d`, n)); err != nil {
		return err
	}
	took, err := z.deliver(dir, n, 5)
	if err != nil {
		return err
	}
	// One file, byte for byte.
	last := strconv.Itoa((n-1)%100) + "/" + strconv.Itoa(n-1) + ".bin"
	got, err := os.ReadFile(published(z, dir, "small/"+last))
	if err != nil {
		return err
	}
	data[0], data[1] = byte(n-1), byte((n-1)>>8)
	if string(got) != string(data) {
		return fmt.Errorf("the published small/%s differs from the source", last)
	}
	z.stop()
	fmt.Printf("| %s | %d | %.1f s | **%.0f** | %s | %s |\n", dir, n, took.Seconds(), float64(n)/took.Seconds(), strings.Join(z.steps, ", "), z.rssCells())
	return nil
}

// fileCases runs the large-file case for each size in each direction.
func fileCases(ctx context.Context, b *bench) error {
	fmt.Printf("| one large file | size | end to end | runs (each a process) | stage bound (same bytes, raw BLOB I/O) | ratio bound ÷ gapsync | peak RSS internet | peak RSS external | peak RSS intranet |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
	for _, size := range b.sizes {
		for _, dir := range b.directions {
			if err := fileCase(b, dir, size); err != nil {
				return fmt.Errorf("%s %d bytes: %w", dir, size, err)
			}
		}
	}
	fmt.Println()
	return nil
}

// fileCase moves one file of size bytes from the source side's store
// through both databases and the gateway into the other side's store,
// verified, and measures the bound of the same bytes on the same server.
func fileCase(b *bench, dir gapsync.Direction, size int64) error {
	z, srcDSN, srcStore, done, err := fileZones(b, dir)
	if done != nil {
		defer done()
	}
	if err != nil {
		return err
	}
	want, err := writeFile(filepath.Join(srcStore, "big.bin"), size)
	if err != nil {
		return err
	}
	if err := execSQL(srcDSN, "INSERT INTO docs VALUES (1, 'big.bin', NOW(6) - INTERVAL 1 MINUTE)"); err != nil {
		return err
	}
	if err := settle(b.dsn); err != nil {
		return err
	}
	total, err := z.deliver(dir, 1, 3)
	if err != nil {
		return err
	}
	z.stop()
	got, err := hashFile(published(z, dir, "big.bin"))
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("the published file differs: %s, want %s", got, want)
	}
	if err := settle(b.dsn); err != nil {
		return err
	}
	bound, err := stageBound(b.dsn, filepath.Join(srcStore, "big.bin"), 4<<20, 4)
	if err != nil {
		return err
	}
	mb := float64(size) / (1 << 20)
	fmt.Printf("| %s | %d MiB | %.1f s, %.0f MB/s | %s | %.1f s, %.0f MB/s | **%.2f** | %s |\n",
		dir, size>>20, total.Seconds(), mb/total.Seconds(), strings.Join(z.steps, ", "),
		bound.Seconds(), mb/bound.Seconds(), bound.Seconds()/total.Seconds(), z.rssCells())
	return nil
}
