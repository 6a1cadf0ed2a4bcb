package storage

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
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
		MustExec(t, db, docsDDL)
		is.NoErr(db.Configure(ctx, raceDocs))
		var seen []bool
		testHookReadBack = func(table string, rb bool) { seen = append(seen, rb) }
		t.Cleanup(func() { testHookReadBack = nil })
		_, err := db.Apply(ctx, Native(db, docBatch("b1", []any{int64(1), "one", "a.png"})))
		is.NoErr(err)
		_, err = db.Apply(ctx, Native(db, docBatch("b2", []any{int64(1), "uno", "a.png"}, []any{int64(2), "two", "b.png"})))
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
		MustExec(t, db, docsDDL)
		is.NoErr(db.Configure(ctx, raceDocs))
		is.NoErr(db.InstallTombstones(ctx, raceDocs))
		var seen []bool
		testHookReadBack = func(table string, rb bool) { seen = append(seen, rb) }
		t.Cleanup(func() { testHookReadBack = nil })
		_, err := db.Apply(ctx, Native(db, docBatch("b1", []any{int64(1), "one", "a.png"})))
		is.NoErr(err)
		is.Equal(seen, []bool{false}) // a plain table, tombstone trigger and all: no read-back
		is.True(!travels(t, db, 1))

		MustExec(t, db, RowTrigger(db, "docs_up", "docs", "INSERT", "title", "upper(NEW.title)")...)
		is.NoErr(db.Configure(ctx, raceDocs))
		_, err = db.Apply(ctx, Native(db, docBatch("b2", []any{int64(2), "two", "b.png"})))
		is.NoErr(err)
		is.Equal(seen, []bool{false, true})
		is.True(!travels(t, db, 2))

		MustExec(t, db, DropTrigger(db, "docs_up", "docs"))
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
		} else if db.d.Name() == "postgres" {
			// No ON UPDATE clause: a BEFORE UPDATE trigger stamps the
			// row, and counts as one.
			MustExec(t, db, RowTrigger(db, "docs_stamp", "docs", "UPDATE", "updated_at", "clock_timestamp()")...)
			MustExec(t, db, "ALTER TABLE docs ADD COLUMN up TEXT GENERATED ALWAYS AS (upper(title)) STORED")
			is.NoErr(db.Configure(ctx, raceDocs))
			eff, err = db.effects(ctx, "docs")
			is.NoErr(err)
			is.Equal(eff, writeEffects{triggers: true, generated: true})
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
		MustExec(t, db, docsDDL)
		MustExec(t, db, RowTrigger(db, "docs_ins", "docs", "INSERT", "title", "upper(NEW.title)")...)
		upd := "UPDATE"
		if db.d.Name() == "sqlite" {
			upd = "UPDATE OF path" // not the insert trigger's own update
		}
		MustExec(t, db, RowTrigger(db, "docs_upd", "docs", upd, "title", "concat(NEW.title, '!')")...)
		is.NoErr(db.Configure(ctx, raceDocs))
		travelling := func() int {
			b, _, _, err := db.ReadPage(ctx, raceDocs, gapsync.Window{To: "9999-12-31 00:00:00.000000"}, nil, gapsync.Page{})
			is.NoErr(err)
			return len(b.Rows)
		}
		_, err := db.Apply(ctx, docBatch("b1", []any{int64(1), "one", "a.png"}, []any{int64(2), "two", "b.png"}))
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

// A table that stamps every update with the time (ON UPDATE
// CURRENT_TIMESTAMP on MariaDB; on PostgreSQL, which has no such clause, a
// BEFORE UPDATE trigger in PL/pgSQL that sets updated_at to
// clock_timestamp(); on SQLite an AFTER UPDATE trigger) stamps the rows
// that sync writes too: they are read back as stored and not sent back,
// while the application's own edit, stamped alike, travels.
func TestStampedApplyDoesNotEcho(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *DB) {
		is := is.New(t)
		ctx := context.Background()
		switch db.d.Name() {
		case "mysql":
			MustExec(t, db, "CREATE TABLE docs (id BIGINT PRIMARY KEY, title VARCHAR(100), path VARCHAR(300), "+
				"updated_at DATETIME(6) NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))")
		case "postgres":
			MustExec(t, db, docsDDL)
			MustExec(t, db, RowTrigger(db, "docs_stamp", "docs", "UPDATE", "updated_at", "clock_timestamp()")...)
		default:
			MustExec(t, db, docsDDL)
			MustExec(t, db, RowTrigger(db, "docs_stamp", "docs", "UPDATE OF title", "updated_at", "strftime('%Y-%m-%d %H:%M:%f', 'now')")...)
		}
		is.NoErr(db.Configure(ctx, raceDocs))
		is.NoErr(db.InstallTombstones(ctx, raceDocs))
		_, err := db.Apply(ctx, docBatch("b1", []any{int64(1), "one", "a.png"}, []any{int64(2), "two", "b.png"}))
		is.NoErr(err)
		_, err = db.Apply(ctx, docBatch("b2", []any{int64(1), "uno", "a.png"}))
		is.NoErr(err)
		var title, stamp string
		is.NoErr(db.sql.QueryRow("SELECT title, "+db.d.SelectExpr("updated_at", "timestamp(6) without time zone")+" FROM docs WHERE id = 1").Scan(&title, &stamp))
		is.Equal(title, "uno")
		if db.d.Name() != "mysql" { // MariaDB keeps a value the statement sets
			is.True(stamp != "2026-01-01 00:00:00.000000") // the table stamped the synced update
		}
		is.True(!travels(t, db, 1))
		is.True(!travels(t, db, 2))
		_, err = db.sql.Exec("UPDATE docs SET title = 'mine' WHERE id = 2")
		is.NoErr(err)
		is.True(travels(t, db, 2))
		is.True(!travels(t, db, 1))
	})
}

// travels reports whether the docs row id is a local change, to be sent.
func travels(t *testing.T, db *DB, id int64) bool {
	t.Helper()
	for _, r := range readAll(t, db, raceDocs, gapsync.Window{To: "9999-12-31 00:00:00.000000"}) {
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
	benchApplyTwoWay(b, "mariadb", docsDDL)
}

// BenchmarkApplyTwoWayOnUpdate is BenchmarkApplyTwoWay on a table whose
// cursor has ON UPDATE CURRENT_TIMESTAMP(6): the read-back path.
func BenchmarkApplyTwoWayOnUpdate(b *testing.B) {
	benchApplyTwoWay(b, "mariadb", "CREATE TABLE docs (id BIGINT PRIMARY KEY, title VARCHAR(100), path VARCHAR(300), "+
		"updated_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6))")
}

// BenchmarkApplyTwoWayPostgres is BenchmarkApplyTwoWay on PostgreSQL; set
// GAPSYNC_TEST_PG_DSN.
func BenchmarkApplyTwoWayPostgres(b *testing.B) {
	benchApplyTwoWay(b, "postgres", docsDDL)
}

// BenchmarkApplyTwoWayPostgresStamped is BenchmarkApplyTwoWayPostgres on
// a table whose BEFORE UPDATE trigger stamps the cursor: the read-back
// path.
func BenchmarkApplyTwoWayPostgresStamped(b *testing.B) {
	benchApplyTwoWay(b, "postgres", docsDDL,
		"CREATE FUNCTION docs_stamp() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END$$",
		"CREATE TRIGGER docs_stamp BEFORE UPDATE ON docs FOR EACH ROW EXECUTE FUNCTION docs_stamp()")
}

func benchApplyTwoWay(b *testing.B, engine string, ddl ...string) {
	ctx := context.Background()
	db := openEngine(b, engine, &Options{Lag: time.Millisecond})
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	MustExec(b, db, ddl...)
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
			if _, err := db.Apply(ctx, Native(db, docBatch(fmt.Sprintf("b%d-%d", i, j), rows...))); err != nil {
				b.Fatal(err)
			}
		}
	}
}
