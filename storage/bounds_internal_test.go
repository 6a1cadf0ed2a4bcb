package storage

import (
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// The batched reads' SQL, checked without a server.
func TestBatchedReadsSQL(t *testing.T) {
	is := is.New(t)
	q := lastRunsQuery([]string{"a", "b"}, gapsync.Pull)
	is.Equal(q.SQL, "SELECT n.i, (SELECT MAX(l.id) FROM sync_log l WHERE l.table_name = n.t AND l.direction = ? AND l.status = ?), "+
		"(SELECT MAX(l.id) FROM sync_log l WHERE l.table_name = n.t AND l.direction = ? AND l.status = ?) "+
		"FROM (SELECT 0 AS i, ? AS t UNION ALL SELECT 1 AS i, ? AS t) AS n")
	is.Equal(q.Args, []any{"pull", "ok", "pull", "reload", "a", "b"})

	is.Equal(mysqlDialect{}.columnsOf(2), "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, COLUMN_KEY = 'PRI', COALESCE(GENERATION_EXPRESSION, '') <> '' "+
		"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?,?) ORDER BY TABLE_NAME, ORDINAL_POSITION")
	is.Equal(sqliteDialect{}.columnsOf(1), "SELECT m.name, p.name, p.type, p.pk > 0, 0 FROM sqlite_master AS m, pragma_table_info(m.name) AS p "+
		"WHERE m.type = 'table' AND m.name COLLATE NOCASE IN (?) ORDER BY m.name, p.cid")
	is.Equal(pgDialect{}.columnsOf(3), "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), COALESCE(a.attnum = ANY(ix.indkey), false), a.attgenerated <> '' "+
		"FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_index ix ON ix.indrelid = c.oid AND ix.indisprimary "+
		"WHERE c.relname IN (?,?,?) AND c.relnamespace = to_regnamespace(current_schema()) AND c.relkind IN ('r', 'p') "+
		"AND a.attnum > 0 AND NOT a.attisdropped ORDER BY c.relname, a.attnum")

	ps := []*emptyProbe{{t: gapsync.Table{Name: "a", Cursor: "v"}}, {t: gapsync.Table{Name: "b`c", Cursor: "w"}}}
	is.Equal(topsQuery(mysqlDialect{}, ps).SQL, "SELECT * FROM (SELECT 0 AS i, MAX(`v`) AS m FROM `a`) AS m0 UNION ALL SELECT * FROM (SELECT 1 AS i, MAX(`w`) AS m FROM `b``c`) AS m1")

	terms := []existsTerm{
		{table: "a", col: "u", typ: "datetime(6)", from: "f", to: "t"},
		{table: "a_gst_tomb", col: "deleted_at", typ: "timestamp with time zone", to: "t2"},
	}
	q = existsQuery(mysqlDialect{}, terms)
	is.Equal(q.SQL, "SELECT * FROM (SELECT 0 AS i, NULL AS v FROM `a` WHERE `u` >= ? AND `u` < ? LIMIT 1) AS e0"+
		" UNION ALL SELECT * FROM (SELECT 1 AS i, NULL AS v FROM `a_gst_tomb` WHERE (`deleted_at` < ? OR `deleted_at` IS NULL) LIMIT 1) AS e1")
	is.Equal(q.Args, []any{"f", "t", "t2"})
	// PostgreSQL reads a timestamptz bound as UTC wall time, as a page does.
	q = existsQuery(pgDialect{}, terms[1:])
	is.Equal(q.SQL, `SELECT * FROM (SELECT 0 AS i, NULL AS v FROM "a_gst_tomb" WHERE ("deleted_at" < (CAST(? AS timestamp) AT TIME ZONE 'UTC') OR "deleted_at" IS NULL) LIMIT 1) AS e0`)
	is.Equal(existsQuery(sqliteDialect{}, terms[:1]).SQL, `SELECT * FROM (SELECT 0 AS i, NULL AS v FROM "a" WHERE "u" >= ? AND "u" < ? LIMIT 1) AS e0`)
}
