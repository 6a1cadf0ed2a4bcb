package storage

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/internal/testdb"
)

// The read-back decision: only a table that may change what is written,
// a write that leaves a column to its default, or a value not in the form
// the database gives back is read back.
func TestReadBackPlan(t *testing.T) {
	is := is.New(t)
	my := []column{{Name: "id", Type: "bigint(20)", Key: true}, {Name: "title", Type: "varchar(100)"}, {Name: "score", Type: "double"}, {Name: "updated_at", Type: "datetime(6)"}}
	lite := []column{{Name: "id", Type: "BIGINT", Key: true}, {Name: "title", Type: "VARCHAR(100)"}, {Name: "score", Type: "REAL"}, {Name: "updated_at", Type: "DATETIME(6)"}}
	all := []string{"id", "title", "score", "updated_at"}
	row := func(v ...any) []batch.Row { return []batch.Row{{Op: batch.OpUpsert, Values: v}} }
	myRow := row(int64(1), []byte("a"), 1.5, []byte("2026-01-01 00:00:00.000000"))
	liteRow := row(int64(1), "a", 1.5, "2026-01-01 00:00:00.000000")

	is.True(!readBackPlan(mysqlDialect{}, writeEffects{}, my, all, myRow))      // a plain table, values as MariaDB gives them: no read-back
	is.True(!readBackPlan(sqliteDialect{}, writeEffects{}, lite, all, liteRow)) // as SQLite gives them
	is.True(!readBackPlan(sqliteDialect{}, writeEffects{}, lite, all, myRow))   // bytes stay bytes in SQLite
	is.True(!readBackPlan(mysqlDialect{}, writeEffects{}, my, all, row(int64(1), nil, nil, nil)))
	is.True(!readBackPlan(mysqlDialect{}, writeEffects{}, my, all, []batch.Row{{Op: batch.OpDelete, Values: []any{int64(1), "x", "y", "z"}}}))

	is.True(readBackPlan(mysqlDialect{}, writeEffects{triggers: true}, my, all, myRow))  // a trigger may change the row
	is.True(readBackPlan(mysqlDialect{}, writeEffects{onUpdate: true}, my, all, myRow))  // ON UPDATE CURRENT_TIMESTAMP
	is.True(readBackPlan(mysqlDialect{}, writeEffects{generated: true}, my, all, myRow)) // a generated column
	is.True(readBackPlan(sqliteDialect{}, writeEffects{triggers: true}, lite, all, liteRow))
	is.True(readBackPlan(mysqlDialect{}, writeEffects{}, my, []string{"id", "title", "updated_at"}, row(int64(1), []byte("a"), []byte("x")))) // score takes its default

	is.True(readBackPlan(mysqlDialect{}, writeEffects{}, my, all, liteRow))                                               // SQLite's text comes back as bytes
	is.True(readBackPlan(mysqlDialect{}, writeEffects{}, my, all, row([]byte("1"), []byte("a"), 1.5, []byte("x"))))       // bytes into an integer column
	is.True(readBackPlan(mysqlDialect{}, writeEffects{}, my, all, row(int64(1), []byte("a"), float32(1.5), []byte("x")))) // FLOAT into DOUBLE
	is.True(readBackPlan(sqliteDialect{}, writeEffects{}, lite, all, row(int64(1), int64(5), 1.5, "x")))                  // a number into TEXT becomes text
	is.True(readBackPlan(sqliteDialect{}, writeEffects{}, lite, all, row("7", "a", 1.5, "x")))                            // numeric text into INTEGER becomes a number
	is.True(readBackPlan(sqliteDialect{}, writeEffects{}, lite, all, row(int64(1), "a", int64(2), "x")))                  // an integer into REAL becomes real
	is.True(readBackPlan(sqliteDialect{}, writeEffects{}, lite, all, row(2.0, "a", 1.5, "x")))                            // an integral real into INTEGER
}

// A plain table written with values in this database's own form takes the
// no-read-back path and the row still does not travel; the same batch in
// another engine's form (text for MariaDB) is first put in this engine's
// form (values.go), so it needs no read-back either, and does not travel.
func TestPlainApplyDoesNotEcho(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *DB) {
		is := is.New(t)
		ctx := context.Background()
		_, err := db.sql.Exec("CREATE TABLE docs (id BIGINT PRIMARY KEY, title VARCHAR(100), path VARCHAR(300), updated_at DATETIME(6))")
		is.NoErr(err)
		is.NoErr(db.Configure(ctx, raceDocs))
		var seen []bool
		testHookReadBack = func(table string, rb bool) { seen = append(seen, rb) }
		t.Cleanup(func() { testHookReadBack = nil })
		_, err = db.Apply(ctx, nativeDocs(db, docBatch("b1", []any{int64(1), "one", "a.png"})))
		is.NoErr(err)
		_, err = db.Apply(ctx, nativeDocs(db, docBatch("b2", []any{int64(1), "uno", "a.png"}, []any{int64(2), "two", "b.png"})))
		is.NoErr(err)
		is.Equal(seen, []bool{false, false})
		is.True(!travels(t, db, 1))
		is.True(!travels(t, db, 2))
		_, err = db.Apply(ctx, docBatch("b3", []any{int64(3), "three", "c.png"}))
		is.NoErr(err)
		is.Equal(seen[2], false) // Go strings became MariaDB's bytes before the decision
		is.True(!travels(t, db, 3))
	})
}

// Which tables the read-back decision sees as changing what is written:
// gapsync's own tombstone trigger (DELETE only) does not count; a user's
// trigger, an ON UPDATE clause or a generated column does, on the next
// request after Configure (which clears the shape cache).
func TestReadBackEffects(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *DB) {
		is := is.New(t)
		ctx := context.Background()
		_, err := db.sql.Exec("CREATE TABLE docs (id BIGINT PRIMARY KEY, title VARCHAR(100), path VARCHAR(300), updated_at DATETIME(6))")
		is.NoErr(err)
		is.NoErr(db.Configure(ctx, raceDocs))
		is.NoErr(db.InstallTombstones(ctx, raceDocs))
		var seen []bool
		testHookReadBack = func(table string, rb bool) { seen = append(seen, rb) }
		t.Cleanup(func() { testHookReadBack = nil })
		_, err = db.Apply(ctx, nativeDocs(db, docBatch("b1", []any{int64(1), "one", "a.png"})))
		is.NoErr(err)
		is.Equal(seen, []bool{false}) // a plain table, tombstone trigger and all: no read-back
		is.True(!travels(t, db, 1))

		if db.d.Name() == "mysql" {
			_, err = db.sql.Exec("CREATE TRIGGER docs_up BEFORE INSERT ON docs FOR EACH ROW SET NEW.title = UPPER(NEW.title)")
		} else {
			_, err = db.sql.Exec("CREATE TRIGGER docs_up AFTER INSERT ON docs FOR EACH ROW BEGIN UPDATE docs SET title = upper(title) WHERE id = NEW.id; END")
		}
		is.NoErr(err)
		is.NoErr(db.Configure(ctx, raceDocs))
		_, err = db.Apply(ctx, nativeDocs(db, docBatch("b2", []any{int64(2), "two", "b.png"})))
		is.NoErr(err)
		is.Equal(seen, []bool{false, true})
		is.True(!travels(t, db, 2))

		_, err = db.sql.Exec("DROP TRIGGER docs_up")
		is.NoErr(err)
		is.NoErr(db.Configure(ctx, raceDocs))
		eff, err := db.effects(ctx, "docs")
		is.NoErr(err)
		is.Equal(eff, writeEffects{})
		if db.d.Name() == "mysql" {
			_, err = db.sql.Exec("ALTER TABLE docs ADD COLUMN stamp DATETIME(6) NULL ON UPDATE CURRENT_TIMESTAMP(6)")
			is.NoErr(err)
			_, err = db.sql.Exec("ALTER TABLE docs ADD COLUMN up VARCHAR(100) AS (UPPER(title)) VIRTUAL")
			is.NoErr(err)
			is.NoErr(db.Configure(ctx, raceDocs))
			eff, err = db.effects(ctx, "docs")
			is.NoErr(err)
			is.Equal(eff, writeEffects{onUpdate: true, generated: true})
		} else {
			_, err = db.sql.Exec("ALTER TABLE docs ADD COLUMN up TEXT AS (upper(title)) VIRTUAL")
			is.NoErr(err)
			is.NoErr(db.Configure(ctx, raceDocs))
			eff, err = db.effects(ctx, "docs")
			is.NoErr(err)
			is.Equal(eff, writeEffects{generated: true})
		}
	})
}

// A row that arrives in a table whose triggers change what is written
// (BEFORE INSERT and BEFORE UPDATE on MariaDB, AFTER INSERT and AFTER
// UPDATE on SQLite, which cannot assign NEW) is not sent back: the ledger
// holds the row as stored.
func TestTriggerChangedApplyDoesNotEcho(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *DB) {
		is := is.New(t)
		ctx := context.Background()
		_, err := db.sql.Exec("CREATE TABLE docs (id BIGINT PRIMARY KEY, title VARCHAR(100), path VARCHAR(300), updated_at DATETIME(6))")
		is.NoErr(err)
		var ddl []string
		if db.d.Name() == "mysql" {
			ddl = []string{
				"CREATE TRIGGER docs_ins BEFORE INSERT ON docs FOR EACH ROW SET NEW.title = UPPER(NEW.title)",
				"CREATE TRIGGER docs_upd BEFORE UPDATE ON docs FOR EACH ROW SET NEW.title = CONCAT(NEW.title, '!')",
			}
		} else {
			ddl = []string{
				"CREATE TRIGGER docs_ins AFTER INSERT ON docs FOR EACH ROW BEGIN UPDATE docs SET title = upper(title) WHERE id = NEW.id; END",
				"CREATE TRIGGER docs_upd AFTER UPDATE OF path ON docs FOR EACH ROW BEGIN UPDATE docs SET title = title || '!' WHERE id = NEW.id; END",
			}
		}
		for _, q := range ddl {
			_, err = db.sql.Exec(q)
			is.NoErr(err)
		}
		is.NoErr(db.Configure(ctx, raceDocs))
		travelling := func() int {
			b, _, _, err := db.ReadPage(ctx, raceDocs, gapsync.Window{To: "9999-12-31 00:00:00.000000"}, nil, gapsync.Page{})
			is.NoErr(err)
			return len(b.Rows)
		}
		_, err = db.Apply(ctx, docBatch("b1", []any{int64(1), "one", "a.png"}, []any{int64(2), "two", "b.png"}))
		is.NoErr(err)
		var title string
		is.NoErr(db.sql.QueryRow("SELECT title FROM docs WHERE id = 1").Scan(&title))
		is.Equal(title, "ONE") // the trigger changed what was written
		is.Equal(travelling(), 0)

		_, err = db.Apply(ctx, docBatch("b2", []any{int64(1), "uno", "a2.png"}))
		is.NoErr(err)
		is.NoErr(db.sql.QueryRow("SELECT title FROM docs WHERE id = 1").Scan(&title))
		is.True(title != "uno") // the update trigger ran too
		is.Equal(travelling(), 0)
	})
}

// nativeDocs turns b's text into the form this database gives back
// ([]byte on MySQL/MariaDB), as a batch read from a database of the same
// kind carries it.
func nativeDocs(db *DB, b *batch.Batch) *batch.Batch {
	if db.d.Name() != "mysql" {
		return b
	}
	for _, r := range b.Rows {
		for i, v := range r.Values {
			if s, ok := v.(string); ok {
				r.Values[i] = []byte(s)
			}
		}
	}
	return b
}

// travels reports whether the docs row id is a local change, to be sent.
func travels(t *testing.T, db *DB, id int64) bool {
	t.Helper()
	b, _, _, err := db.ReadPage(context.Background(), raceDocs, gapsync.Window{To: "9999-12-31 00:00:00.000000"}, nil, gapsync.Page{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range b.Rows {
		if text(r.Values[0]) == fmt.Sprint(id) {
			return true
		}
	}
	return false
}

// BenchmarkApplyTwoWay applies 20 push batches of 1,000 rows each (half
// new rows, half updates) to a plain two-way table on MariaDB; set
// GAPSYNC_TEST_MYSQL_DSN. One iteration is the 20 batches.
func BenchmarkApplyTwoWay(b *testing.B) {
	if os.Getenv("GAPSYNC_TEST_MYSQL_DSN") == "" {
		b.Skip("GAPSYNC_TEST_MYSQL_DSN not set")
	}
	benchApplyTwoWay(b, "CREATE TABLE docs (id BIGINT PRIMARY KEY, title VARCHAR(100), path VARCHAR(300), updated_at DATETIME(6))")
}

// BenchmarkApplyTwoWayOnUpdate is BenchmarkApplyTwoWay on a table whose
// cursor has ON UPDATE CURRENT_TIMESTAMP(6): the read-back path.
func BenchmarkApplyTwoWayOnUpdate(b *testing.B) {
	if os.Getenv("GAPSYNC_TEST_MYSQL_DSN") == "" {
		b.Skip("GAPSYNC_TEST_MYSQL_DSN not set")
	}
	benchApplyTwoWay(b, "CREATE TABLE docs (id BIGINT PRIMARY KEY, title VARCHAR(100), path VARCHAR(300), "+
		"updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))")
}

func benchApplyTwoWay(b *testing.B, ddl string) {
	ctx := context.Background()
	db, err := OpenMySQL(testdb.MySQL(b), &Options{Lag: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := db.sql.Exec(ddl); err != nil {
		b.Fatal(err)
	}
	if err := db.Configure(ctx, raceDocs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < 20; j++ {
			rows := make([][]any, 1000)
			for k := range rows {
				id := int64(i*10000 + j*500 + k) // each batch updates the previous batch's newer half
				rows[k] = []any{id, fmt.Sprintf("title %d %d", i, j), fmt.Sprintf("p/%d.png", id)}
			}
			if _, err := db.Apply(ctx, nativeDocs(db, docBatch(fmt.Sprintf("b%d-%d", i, j), rows...))); err != nil {
				b.Fatal(err)
			}
		}
	}
}
