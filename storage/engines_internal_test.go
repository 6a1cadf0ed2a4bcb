package storage

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/internal/testdb"
)

// engines are the engines the package's own tests run on. SQLite always
// runs; MariaDB and PostgreSQL are skipped without their servers (or fail,
// with GAPSYNC_TEST_REQUIRE_MYSQL / GAPSYNC_TEST_REQUIRE_PG).
var engines = []string{"sqlite", "mariadb", "postgres"}

// openEngine opens a new, empty database of engine (one of engines),
// closed when the test ends.
func openEngine(t testing.TB, engine string, o *Options) *DB {
	t.Helper()
	var db *DB
	var err error
	switch engine {
	case "sqlite":
		db, err = OpenSQLite(testdb.SQLite(t), o)
	case "mariadb":
		db, err = OpenMySQL(testdb.MySQL(t), o)
	case "postgres":
		db, err = OpenPostgres(testdb.Postgres(t), o)
	default:
		t.Fatalf("no engine %q", engine)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// EachEngine runs fn as a subtest per engine, each on a new, migrated
// database.
func EachEngine(t *testing.T, o *Options, fn func(t *testing.T, db *DB)) {
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			db := openEngine(t, engine, o)
			if err := db.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			fn(t, db)
		})
	}
}

// pgDDL turns the tests' MySQL-flavoured column types into PostgreSQL's.
var pgDDL = strings.NewReplacer("DATETIME(6)", "TIMESTAMP(6)", " FLOAT", " REAL")

// MustExec runs the tests' setup statements, written for MySQL and
// SQLite, in db's own dialect (PostgreSQL has TIMESTAMP for DATETIME).
func MustExec(t testing.TB, db *DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if db.d.Name() == "postgres" {
			q = pgDDL.Replace(q)
		}
		if _, err := db.sql.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// RowTrigger returns the statements that make a trigger name on table
// that, on event (INSERT or UPDATE), sets column col of the new row to
// expr (written over NEW.…), each engine its own way: a BEFORE trigger
// with SET on MySQL, a BEFORE trigger in PL/pgSQL on PostgreSQL, and on
// SQLite, which cannot assign NEW, an AFTER trigger that updates the row
// by its id.
func RowTrigger(db *DB, name, table, event, col, expr string) []string {
	switch db.d.Name() {
	case "mysql":
		return []string{"CREATE TRIGGER " + name + " BEFORE " + event + " ON " + table + " FOR EACH ROW SET NEW." + col + " = " + expr}
	case "postgres":
		return []string{
			"CREATE FUNCTION " + name + "() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW." + col + " := " + expr + "; RETURN NEW; END$$",
			"CREATE TRIGGER " + name + " BEFORE " + event + " ON " + table + " FOR EACH ROW EXECUTE FUNCTION " + name + "()",
		}
	}
	return []string{"CREATE TRIGGER " + name + " AFTER " + event + " ON " + table + " FOR EACH ROW BEGIN UPDATE " + table +
		" SET " + col + " = " + expr + " WHERE id = NEW.id; END"}
}

// DropTrigger drops the trigger RowTrigger made.
func DropTrigger(db *DB, name, table string) string {
	if db.d.Name() == "postgres" {
		return "DROP TRIGGER " + name + " ON " + table
	}
	return "DROP TRIGGER " + name
}

// Native turns b's values into the form this database gives back
// ([]byte for text on MySQL/MariaDB, text for every value on PostgreSQL),
// as a batch read from a database of the same kind carries them.
func Native(db *DB, b *batch.Batch) *batch.Batch {
	for _, r := range b.Rows {
		for i, v := range r.Values {
			switch db.d.Name() {
			case "mysql":
				if s, ok := v.(string); ok {
					r.Values[i] = []byte(s)
				}
			case "postgres":
				if v != nil {
					r.Values[i] = fmt.Sprint(v)
				}
			}
		}
	}
	return b
}

// readAll reads every page of t's changes in w, a row a page, so that the
// keyset position runs over every key and past an empty page.
func readAll(t *testing.T, db *DB, tb gapsync.Table, w gapsync.Window) []batch.Row {
	t.Helper()
	var out []batch.Row
	var after []byte
	for {
		b, next, more, err := db.ReadPage(context.Background(), tb, w, after, gapsync.Page{Rows: 1})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b.Rows...)
		if !more {
			return out
		}
		after = next
	}
}
