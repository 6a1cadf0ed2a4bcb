package storage

import (
	"strings"
	"testing"

	"github.com/gapsync/gapsync/batch"

	"github.com/matryer/is"
)

func TestUpsertSQL(t *testing.T) {
	is := is.New(t)
	is.Equal(mysqlDialect{}.Upsert("t", []string{"id", "a", "b"}, []string{"id"}, 2),
		"INSERT INTO `t` (`id`,`a`,`b`) VALUES (?,?,?),(?,?,?) ON DUPLICATE KEY UPDATE `a`=VALUES(`a`),`b`=VALUES(`b`)")
	is.Equal(sqliteDialect{}.Upsert("t", []string{"id", "a"}, []string{"id"}, 1),
		`INSERT INTO "t" ("id","a") VALUES (?,?) ON CONFLICT ("id") DO UPDATE SET "a"=excluded."a"`)
	// A table that is all key has nothing to update.
	is.Equal(mysqlDialect{}.Upsert("t", []string{"a", "b"}, []string{"a", "b"}, 1),
		"INSERT INTO `t` (`a`,`b`) VALUES (?,?) ON DUPLICATE KEY UPDATE `a`=`a`")
	is.Equal(sqliteDialect{}.Upsert("t", []string{"a", "b"}, []string{"a", "b"}, 1),
		`INSERT INTO "t" ("a","b") VALUES (?,?) ON CONFLICT ("a","b") DO NOTHING`)
}

func TestQuoteDoublesQuoteChars(t *testing.T) {
	is := is.New(t)
	is.Equal(mysqlDialect{}.Quote("a`b"), "`a``b`")
	is.Equal(sqliteDialect{}.Quote(`a"b`), `"a""b"`)
}

func TestSelectPageSQL(t *testing.T) {
	is := is.New(t)
	// Initial load: no lower bound, NULL cursors included, keyset on the key.
	q := selectPage(mysqlDialect{}, pageQuery{table: "t", cols: []string{"id", "k", "u"}, cursor: "u", key: []string{"id", "k"}, to: "2020-01-01", after: []any{1, "x"}, limit: 10})
	is.Equal(q.SQL, "SELECT `id`,`k`,`u` FROM `t` WHERE (`u` < ? OR `u` IS NULL) AND "+
		"(`id` > ? OR (`id` = ? AND (`k` > ?))) ORDER BY `t`.`id`,`t`.`k` LIMIT 10")
	is.Equal(q.Args, []any{"2020-01-01", 1, 1, "x"})
	// Later windows: half-open range, keyset on (cursor, key).
	q = selectPage(sqliteDialect{}, pageQuery{table: "t", cols: []string{"id", "u"}, cursor: "u", key: []string{"id"}, from: "a", to: "b", limit: 5})
	is.Equal(q.SQL, `SELECT +"id" AS "id",+"u" AS "u" FROM "t" WHERE "u" >= ? AND "u" < ? ORDER BY "t"."u","t"."id" LIMIT 5`)
	is.Equal(q.Args, []any{"a", "b"})
	q = selectPage(sqliteDialect{}, pageQuery{table: "t", cols: []string{"id", "u"}, cursor: "u", key: []string{"id"}, from: "a", to: "b", after: []any{"c", 7}, limit: 5, extra: "x = 1"})
	is.Equal(q.SQL, `SELECT +"id" AS "id",+"u" AS "u" FROM "t" WHERE "u" >= ? AND "u" < ? AND x = 1 AND ("u" > ? OR ("u" = ? AND ("id" > ?))) ORDER BY "t"."u","t"."id" LIMIT 5`)
	is.Equal(q.Args, []any{"a", "b", "c", "c", 7})
}

func TestKeyMatchSQL(t *testing.T) {
	is := is.New(t)
	w, args := keyMatch(mysqlDialect{}, "", []string{"a", "b"}, [][]any{{1, "x"}, {2, "y"}})
	is.Equal(w, "(`a` = ? AND `b` = ?) OR (`a` = ? AND `b` = ?)")
	is.Equal(args, []any{1, "x", 2, "y"})
}

func TestChunkRespectsLimits(t *testing.T) {
	is := is.New(t)
	db := &DB{d: mysqlDialect{}, opts: (&Options{MaxStatementRows: 3, MaxStatementBytes: 100}).withDefaults()}
	row := func(n int) batchRow { return batchRow{Op: 1, Values: []any{make([]byte, n)}} }
	chunks, err := db.chunk([]batchRow{row(10), row(10), row(10), row(10), row(60), row(50)})
	is.NoErr(err)
	var sizes []int
	for _, c := range chunks {
		sizes = append(sizes, len(c))
	}
	is.Equal(sizes, []int{3, 2, 1}) // 3 by rows; then 10+60 fit, +50 does not
	_, err = db.chunk([]batchRow{row(200)})
	is.True(err != nil) // one row over the statement cap
}

type batchRow = batch.Row

// The live column probe reads no row on MySQL and SQLite.
func TestLiveColumnsSQL(t *testing.T) {
	is := is.New(t)
	for _, d := range []dialect{mysqlDialect{}, sqliteDialect{}} {
		q, byRows := d.liveColumns("t")
		is.True(!byRows)
		is.Equal(q.SQL, "SELECT * FROM "+d.Quote("t")+" WHERE 1 = 0")
		is.Equal(len(q.Args), 0)
	}
}

// The statement forms a Shape carries for an operator's fixes: each
// engine quotes with its own character and retypes a column its own way.
func TestShapeStatementForms(t *testing.T) {
	is := is.New(t)
	for _, c := range []struct {
		d            shapeDialect
		quote, alter string
	}{
		{mysqlDialect{}, "`", "ALTER TABLE %s MODIFY %s %s"},
		{pgDialect{}, `"`, "ALTER TABLE %s ALTER COLUMN %s TYPE %s"},
	} {
		is.Equal(c.d.identQuote(), c.quote)
		is.Equal(c.d.alterType(), c.alter)
	}
	is.Equal(sqliteDialect{}.identQuote(), `"`)
	is.True(strings.Contains(sqliteDialect{}.alterType(), "rebuild the table"))
}
