package storage

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/rules"
)

// Cursor kinds follow the column type; anything else is refused with the
// types that work.
func TestCursorKindOf(t *testing.T) {
	is := is.New(t)
	for typ, want := range map[string]cursorKind{
		"datetime(6)": kindTime, "timestamp": kindTime, "timestamp(3)": kindTime,
		"bigint(20) unsigned": kindInteger, "bigint": kindInteger, "int(11)": kindInteger, "int unsigned": kindInteger,
		"tinyint(4)": kindInteger, "smallint": kindInteger, "mediumint(9)": kindInteger,
	} {
		k, err := cursorKindOf(mysqlDialect{}, typ)
		is.NoErr(err)
		is.Equal(k, want)
	}
	for typ, want := range map[string]cursorKind{"DATETIME(6)": kindTime, "TIMESTAMP": kindTime, "INTEGER": kindInteger, "BIGINT": kindInteger} {
		k, err := cursorKindOf(sqliteDialect{}, typ)
		is.NoErr(err)
		is.Equal(k, want)
	}
	for _, typ := range []string{"varchar(20)", "float", "double", "decimal(20,0)", "date", "time(6)", "year", "char(19)", "interval"} {
		_, err := cursorKindOf(mysqlDialect{}, typ)
		is.True(errors.Is(err, gapsync.ErrUnsupportedCursor))
		is.True(strings.Contains(err.Error(), typ))
		is.True(strings.Contains(err.Error(), "DATETIME or TIMESTAMP"))
		is.True(strings.Contains(err.Error(), "BIGINT"))
	}
	for _, typ := range []string{"TEXT", "REAL", "", "DATE"} {
		_, err := cursorKindOf(sqliteDialect{}, typ)
		is.True(errors.Is(err, gapsync.ErrUnsupportedCursor))
	}
	// PostgreSQL's types as format_type names them.
	for typ, want := range map[string]cursorKind{
		"timestamp(6) without time zone": kindTime, "timestamp with time zone": kindTime, "timestamp(3) with time zone": kindTime,
		"bigint": kindInteger, "integer": kindInteger, "smallint": kindInteger,
	} {
		k, err := cursorKindOf(pgDialect{}, typ)
		is.NoErr(err)
		is.Equal(k, want)
	}
	for _, typ := range []string{"text", "numeric(20,0)", "date", "time without time zone", "interval", "timestamp(6) without time zone[]", "bigint[]", "double precision", "uuid"} {
		_, err := cursorKindOf(pgDialect{}, typ)
		is.True(errors.Is(err, gapsync.ErrUnsupportedCursor))
	}
}

// Integer bounds are bound as numbers, so the database compares numbers.
func TestSelectPageIntegerBounds(t *testing.T) {
	is := is.New(t)
	q := selectPage(mysqlDialect{}, pageQuery{table: "t", cols: []string{"id", "ver"}, cursor: "ver", key: []string{"id"}, from: "9", to: "18446744073709551615", limit: 5, num: true})
	is.Equal(q.Args, []any{int64(9), uint64(18446744073709551615)})
	q = selectPage(sqliteDialect{}, pageQuery{table: "t", cols: []string{"id", "ver"}, cursor: "ver", key: []string{"id"}, limit: 5, num: true})
	is.Equal(q.SQL, `SELECT +"id" AS "id",+"ver" AS "ver" FROM "t" WHERE 1 = 1 ORDER BY "t"."id" LIMIT 5`)
}

// The open-transaction guard holds an integer bound at the newest top seen
// before the transaction began.
func TestIntHistory(t *testing.T) {
	is := is.New(t)
	var h intHistory
	t0 := time.Now()
	_, ok := h.before("t", t0)
	is.True(!ok)
	for i := 0; i < 5; i++ {
		h.add("t", t0.Add(time.Duration(i)*time.Minute), intFloor, 90*time.Second)
	}
	is.Equal(len(h.m["t"]), 3) // the samples within keep, and the newest one before them
	v, ok := h.before("t", t0.Add(3*time.Minute+time.Second))
	is.True(ok)
	is.Equal(v.Cmp(intFloor), 0)
	_, ok = h.before("t", t0.Add(time.Minute))
	is.True(!ok) // forgotten: older than keep
}

// Integer cursors conflict and win by number, not by text.
func TestUnsyncedComparesNumbers(t *testing.T) {
	is := is.New(t)
	is.True(rules.Unsynced(int64(10), "9"))
	is.True(!rules.Unsynced(int64(9), "10"))
	is.True(rules.Unsynced(uint64(18446744073709551615), "9223372036854775808"))
	is.True(rules.Unsynced([]byte("2026-01-02 00:00:00.000000"), "2026-01-01 00:00:00.000000"))
	is.True(rules.Unsynced(int64(1), "2026-01-01 00:00:00.000000")) // a bound of the other kind proves nothing
	is.True(!rules.Unsynced(nil, "5"))
}
