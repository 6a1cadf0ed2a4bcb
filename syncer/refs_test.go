package syncer_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/syncer"
)

// fileZonesWith is newFileZones with docs declared by ddl (and whatever
// triggers follow it), on both sides.
func fileZonesWith(t *testing.T, kind string, ddl ...string) *fileZones {
	t.Helper()
	z := &fileZones{zones: newZones(t, kind, zoneOpts{}), chunkSize: 16 << 10}
	z.both(docs, ddl...)
	z.inetStore, z.intraStore = newStore(t, "local"), newStore(t, "local")
	fo := func(st syncer.FileStore) syncer.FileOptions {
		return syncer.FileOptions{Store: st, ChunkSize: z.chunkSize, BatchBytes: 3 * z.chunkSize, Retention: -1}
	}
	inet := fo(z.inetStore)
	var err error
	if z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: &inet}); err != nil {
		t.Fatal(err)
	}
	if z.worker, err = syncer.NewIntranetWorker(z.intra, &syncer.WorkerOptions{Files: fo(z.intraStore)}); err != nil {
		t.Fatal(err)
	}
	return z
}

func (z *fileZones) db(side gapsync.Side) sideDB {
	if side == gapsync.Intranet {
		return sideDB{z.t, z.dst()}
	}
	return sideDB{z.t, z.src()}
}

// The tables of TestRewriteIsNotALocalChange: a cursor that the database
// moves by itself on every UPDATE, three ways.
var movingCursors = []struct {
	name, kind string
	ddl        []string
	keepsStamp bool // the rewrite leaves the cursor where it was (SET cursor = cursor)
}{
	{"mariadb ON UPDATE CURRENT_TIMESTAMP(6)", "mysql", []string{`CREATE TABLE docs (
		id BIGINT NOT NULL PRIMARY KEY,
		title VARCHAR(200) NULL,
		path VARCHAR(600) NULL,
		updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))`}, true},
	{"mariadb BEFORE UPDATE trigger", "mysql", []string{docsDDL,
		"CREATE TRIGGER docs_touch BEFORE UPDATE ON docs FOR EACH ROW SET NEW.updated_at = NOW(6)"}, false},
	{"sqlite AFTER UPDATE trigger", "sqlite", []string{docsDDL,
		`CREATE TRIGGER docs_touch AFTER UPDATE ON docs FOR EACH ROW BEGIN
			UPDATE docs SET updated_at = strftime('%Y-%m-%d %H:%M:%f', 'now') WHERE id = NEW.id; END`}, false},
}

// A reference rewritten by sync is not a local change, whatever the table
// does to its cursor on UPDATE: an internet edit made while the file was on
// its way is kept on both sides (no conflict, no intranet version winning
// with the rewrite's fresh timestamp), an intranet edit made before the
// rewrite still travels, and nothing moves in 20 quiet cycles after.
func TestRewriteIsNotALocalChange(t *testing.T) {
	for _, c := range movingCursors {
		t.Run(c.name, func(t *testing.T) {
			is := is.New(t)
			z := fileZonesWith(t, c.kind, c.ddl...)
			put(t, z.inetStore, "in/a.png", []byte("file a"))
			put(t, z.inetStore, "in/b.png", []byte("file b"))
			z.doc(gapsync.Internet, 1, "in/a.png")
			z.doc(gapsync.Internet, 2, "in/b.png")
			z.waitLag()
			r, err := z.coord.RunOnce(context.Background())
			is.NoErr(err)
			is.Equal(r.Rows(gapsync.Push), int64(2))
			is.Equal(r.Files.Sent, 2)

			// While the files are on their way: the internet edits row 1,
			// the intranet edits row 2. The database stamps both.
			inet, intra := z.db(gapsync.Internet), z.db(gapsync.Intranet)
			inet.exec("UPDATE docs SET title = 'edited on the internet' WHERE id = 1")
			intra.exec("UPDATE docs SET title = 'edited on the intranet' WHERE id = 2")
			stamp := intra.str("SELECT updated_at FROM docs WHERE id = 1")
			w, err := z.worker.RunOnce(context.Background())
			is.NoErr(err)
			is.Equal(w.Published, 2)
			is.Equal(z.path(gapsync.Intranet, 1), "from-internet/in/a.png")
			is.Equal(z.path(gapsync.Intranet, 2), "from-internet/in/b.png")
			if c.keepsStamp {
				is.Equal(intra.str("SELECT updated_at FROM docs WHERE id = 1"), stamp) // cursor = cursor held it
			} else {
				is.True(intra.str("SELECT updated_at FROM docs WHERE id = 1") != stamp) // the trigger moved it: the ledger follows what is stored
			}

			r, _ = z.round()
			is.NoErr(r.Err())
			is.Equal(r.Conflicts(), 0)
			is.Equal(r.Rows(gapsync.Pull), int64(1)) // row 2's intranet edit, not row 1's rewrite
			is.Equal(r.Rows(gapsync.Push), int64(1)) // row 1's internet edit
			for _, s := range []gapsync.Side{gapsync.Internet, gapsync.Intranet} {
				is.Equal(z.db(s).str("SELECT title FROM docs WHERE id = 1"), "edited on the internet")
				is.Equal(z.db(s).str("SELECT title FROM docs WHERE id = 2"), "edited on the intranet")
			}
			is.Equal(z.path(gapsync.Intranet, 1), "from-internet/in/a.png")
			is.Equal(z.path(gapsync.Internet, 1), "in/a.png")
			is.Equal(z.path(gapsync.Internet, 2), "in/b.png")
			for i := 0; i < 20; i++ {
				r, _ := z.round()
				is.NoErr(r.Err())
				is.Equal(r.Rows(""), int64(0)) // quiet: no echo of rewrites or of stamped applies
			}
			n, err := z.inet.Conflicts(context.Background(), "docs")
			is.NoErr(err)
			is.Equal(len(n), 0)
		})
	}
}

// sideDB is one side's database, for short test statements.
type sideDB struct {
	t  *testing.T
	db *sql.DB
}

func (d sideDB) exec(q string, args ...any) { d.t.Helper(); mustExec(d.t, d.db, q, args...) }

// str returns the single value q selects, as text.
func (d sideDB) str(q string, args ...any) string {
	d.t.Helper()
	var s sql.NullString
	if err := d.db.QueryRow(q, args...).Scan(&s); err != nil {
		d.t.Fatalf("%s: %v", q, err)
	}
	return s.String
}
