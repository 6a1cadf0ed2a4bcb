package syncer_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage/httpstore"
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

// stored reports whether st holds key.
func stored(st syncer.FileStore, key string) bool {
	_, err := st.Stat(context.Background(), key)
	return err == nil
}

// rounds runs n cycles, each followed by a worker run.
func (z *fileZones) rounds(n int) {
	z.t.Helper()
	for range n {
		z.round()
	}
}

// A reference that arrived from the other side is never staged by this
// side, in either direction, even when this side's store holds a file of
// that name and the row is edited here before the far file is published:
// the gateway's pull does not record an internet reference as an intranet
// file, nor the coordinator's push an intranet one as an internet file.
func TestForeignRefNeverStaged(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := fileZonesWith(t, kind, docsDDL)
		put(t, z.inetStore, "in/x.png", []byte("the internet's x"))
		put(t, z.intraStore, "in/x.png", []byte("an intranet file that happens to be named alike"))
		put(t, z.intraStore, "out/y.png", []byte("the intranet's y"))
		put(t, z.inetStore, "out/y.png", []byte("an internet file that happens to be named alike"))
		z.doc(gapsync.Internet, 1, "in/x.png")
		z.doc(gapsync.Intranet, 2, "out/y.png")
		z.waitLag()
		_, err := z.coord.RunOnce(context.Background()) // rows cross; no worker run yet: neither file is published
		is.NoErr(err)
		// Each side edits the row that holds the other side's reference.
		z.db(gapsync.Intranet).exec("UPDATE docs SET title = 'seen on the intranet', updated_at = " + z.now + " WHERE id = 1")
		z.db(gapsync.Internet).exec("UPDATE docs SET title = 'seen on the internet', updated_at = " + z.now + " WHERE id = 2")
		z.rounds(4)
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE origin = 'intranet' AND ref = 'in/x.png'"), 0)
		is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM file_record WHERE origin = 'internet' AND ref = 'out/y.png'"), 0)
		is.True(!stored(z.inetStore, "from-intranet/in/x.png"))   // the intranet's same-named file stayed home
		is.True(!stored(z.intraStore, "from-internet/out/y.png")) // and the internet's
		// Each file crossed from the side it belongs to, and rows point at it.
		is.Equal(sha(t, z.intraStore, "from-internet/in/x.png"), shaOf([]byte("the internet's x")))
		is.Equal(sha(t, z.inetStore, "from-intranet/out/y.png"), shaOf([]byte("the intranet's y")))
		is.Equal(z.path(gapsync.Intranet, 1), "from-internet/in/x.png")
		is.Equal(z.path(gapsync.Internet, 2), "from-intranet/out/y.png")
		is.Equal(z.path(gapsync.Internet, 1), "in/x.png")
		is.Equal(z.path(gapsync.Intranet, 2), "out/y.png")
		is.Equal(z.db(gapsync.Internet).str("SELECT title FROM docs WHERE id = 1"), "seen on the intranet")
		is.Equal(z.db(gapsync.Intranet).str("SELECT title FROM docs WHERE id = 2"), "seen on the internet")
	})
}

// An internet row that names an object only the intranet store holds does
// not make the intranet export it, however often the intranet edits the
// row: a reference from the internet is the internet's, whatever it says.
func TestIntranetOnlyObjectNeverExported(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := fileZonesWith(t, kind, docsDDL)
		put(t, z.intraStore, "secret/plan.pdf", []byte("intranet only"))
		z.doc(gapsync.Internet, 1, "secret/plan.pdf")
		z.round()
		for i := range 3 {
			z.db(gapsync.Intranet).exec("UPDATE docs SET title = ?, updated_at = "+z.now+" WHERE id = 1", fmt.Sprint("intranet edit ", i))
			z.round()
		}
		z.rounds(2)
		is.Equal(z.db(gapsync.Internet).str("SELECT title FROM docs WHERE id = 1"), "intranet edit 2") // the edits travelled
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE origin = 'intranet'"), 0)
		is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM file_record WHERE origin = 'intranet'"), 0)
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_chunk"), 0)
		is.True(!stored(z.inetStore, "from-intranet/secret/plan.pdf"))
		is.Equal(z.path(gapsync.Internet, 1), "secret/plan.pdf")
	})
}

// Publishing a file rewrites only the rows where that reference arrived
// from the other side: a row that names this side's own file of the same
// name keeps it, whether it was written before the far file was
// published or after, and its file crosses the other way as its own.
func TestSameNamedLocalFileNotRewritten(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := fileZonesWith(t, kind, docsDDL)
		a, b := []byte("internet same.png"), []byte("intranet same.png")
		put(t, z.inetStore, "same.png", a)
		put(t, z.intraStore, "same.png", b)
		z.doc(gapsync.Internet, 1, "same.png")
		z.doc(gapsync.Intranet, 2, "same.png")
		late := []byte("internet late.png")
		put(t, z.inetStore, "late.png", late)
		z.doc(gapsync.Internet, 4, "late.png")
		z.rounds(2)
		is.Equal(sha(t, z.intraStore, "from-internet/late.png"), shaOf(late))
		// Written on the intranet after the internet's late.png was published there.
		lateIntra := []byte("intranet late.png")
		put(t, z.intraStore, "late.png", lateIntra)
		z.doc(gapsync.Intranet, 5, "late.png")
		z.rounds(3)
		is.Equal(sha(t, z.intraStore, "from-internet/same.png"), shaOf(a))
		is.Equal(sha(t, z.inetStore, "from-intranet/same.png"), shaOf(b))
		is.Equal(sha(t, z.inetStore, "from-intranet/late.png"), shaOf(lateIntra))
		is.Equal(z.path(gapsync.Intranet, 1), "from-internet/same.png")
		is.Equal(z.path(gapsync.Intranet, 2), "same.png") // its own file, not redirected
		is.Equal(z.path(gapsync.Internet, 1), "same.png")
		is.Equal(z.path(gapsync.Internet, 2), "from-intranet/same.png")
		is.Equal(z.path(gapsync.Intranet, 4), "from-internet/late.png")
		is.Equal(z.path(gapsync.Intranet, 5), "late.png")
		is.Equal(z.path(gapsync.Internet, 4), "late.png")
		is.Equal(z.path(gapsync.Internet, 5), "from-intranet/late.png")
		r, _ := z.round()
		is.Equal(r.Rows(""), int64(0))
	})
}

// Spellings of one key ("a%20b.png", "a b.png") are one file: it is
// staged and crosses once, and every row that holds either spelling
// points at the one published copy.
func TestPercentSpellingsStageOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		z := fileZonesWith(t, kind, docsDDL)
		data := randBytes(31, 3*int(z.chunkSize)+5)
		put(t, z.intraStore, "docs/a b.png", data)
		z.doc(gapsync.Intranet, 1, "docs/a%20b.png")
		z.doc(gapsync.Intranet, 2, "docs/a b.png")
		z.doc(gapsync.Intranet, 3, "docs/a%20b%2Epng")
		var moved int64
		for range 3 {
			r, _ := z.round()
			is.NoErr(r.Err())
			moved += r.Files.Bytes
		}
		is.Equal(moved, int64(len(data))) // once
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM file_record WHERE origin = 'intranet'"), 1)
		is.Equal(sha(t, z.inetStore, "from-intranet/docs/a b.png"), shaOf(data))
		for id := 1; id <= 3; id++ {
			is.Equal(z.path(gapsync.Internet, id), "from-intranet/docs/a b.png")
		}
		is.Equal(z.path(gapsync.Intranet, 1), "docs/a%20b.png")
	})
}

// URLs that differ only in their query (or only in a spelling of the same
// path) are published where no other reference can be: two files, two
// keys, each row pointing at its own; spellings of one URL share one.
func TestURLKeysInjective(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s version %s", r.URL.Path, r.URL.Query().Get("v"))
		}))
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL)
		web, err := httpstore.New(&httpstore.Options{AllowHosts: []string{u.Host}, AllowAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		is.NoErr(err)
		z := fileZonesWith(t, kind, docsDDL)
		o := syncer.FileOptions{Store: z.inetStore, URLStore: web, ChunkSize: z.chunkSize, BatchBytes: 3 * z.chunkSize, Retention: -1}
		z.coord, err = syncer.NewCoordinator(z.inet, z.client, &syncer.CoordinatorOptions{Files: &o})
		is.NoErr(err)
		refs := []string{srv.URL + "/img/a.png?v=1", srv.URL + "/img/a.png?v=2", srv.URL + "/img/a.png", srv.URL + "/img/%61.png?v=1"}
		for i, ref := range refs {
			z.doc(gapsync.Internet, i+1, ref)
		}
		z.rounds(3)
		want := []string{"/img/a.png version 1", "/img/a.png version 2", "/img/a.png version "}
		keys := map[string]bool{}
		for i, w := range want {
			p := z.path(gapsync.Intranet, i+1)
			is.Equal(sha(t, z.intraStore, p), shaOf([]byte(w)))                       // each row its own file
			is.True(strings.HasPrefix(p, "from-internet/http:/"+u.Host+"/img/a.png")) // scheme, host and path kept
			keys[p] = true
		}
		is.Equal(len(keys), 3)
		is.Equal(z.path(gapsync.Intranet, 4), z.path(gapsync.Intranet, 1)) // one URL, two spellings
		is.Equal(z.path(gapsync.Internet, 2), refs[1])
	})
}
