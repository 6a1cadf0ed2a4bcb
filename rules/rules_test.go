package rules_test

import (
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/rules"
)

var names = []string{"id", "title", "updated_at"}

func TestStateHashes(t *testing.T) {
	is := is.New(t)
	row := []any{int64(1), []byte("a"), []byte("2020-01-01 00:00:00.000000")}
	// Column order does not matter; values and their types do.
	is.Equal(rules.RowHash(names, row), rules.RowHash([]string{"updated_at", "id", "title"}, []any{row[2], row[0], row[1]}))
	is.True(rules.RowHash(names, row) != rules.RowHash(names, []any{int64(1), []byte("b"), row[2]}))
	is.True(rules.KeyHash([]any{int64(10)}) != rules.KeyHash([]any{"10"})) // one form per column: the driver's
	// NULL is not the empty BLOB, whichever way a driver gives the latter.
	is.True(rules.RowHash(names, []any{int64(1), nil, row[2]}) != rules.RowHash(names, []any{int64(1), []byte{}, row[2]}))
	is.Equal(rules.RowHash(names, []any{int64(1), []byte(nil), row[2]}), rules.RowHash(names, []any{int64(1), []byte{}, row[2]}))
	// A deletion's state is its key and its time: deleting again later is a new state.
	del := func(at string) string {
		return rules.StateHash(batch.OpDelete, names, []any{int64(1), nil, []byte(at)}, []int{0}, 2)
	}
	is.True(del("2020-01-01") != del("2020-01-02"))
	is.True(del("2020-01-01") != rules.StateHash(batch.OpUpsert, names, row, []int{0}, 2))
	is.Equal(del("2020-01-01")[0], byte('d'))
}

func TestEchoAndConflict(t *testing.T) {
	is := is.New(t)
	is.True(rules.IsEcho("h1", "h1"))
	is.True(!rules.IsEcho("h1", "h2"))
	is.True(!rules.IsEcho("", "")) // no ledger entry: never an echo
	since := "2020-01-02 00:00:00.000000"
	changed := rules.Local{Found: true, State: "mine", Cursor: []byte("2020-01-03 00:00:00.000000")}
	is.True(rules.Conflicts("in", changed, "ledger", since, false))    // a local change that has not travelled
	is.True(!rules.Conflicts("in", changed, "ledger", since, true))    // forced
	is.True(!rules.Conflicts("mine", changed, "ledger", since, false)) // the same state arrives
	is.True(!rules.Conflicts("in", changed, "mine", since, false))     // sync wrote it: not a local change
	is.True(!rules.Conflicts("in", rules.Local{}, "", since, false))   // nothing here
	old := changed
	old.Cursor = []byte("2020-01-01 00:00:00.000000")
	is.True(!rules.Conflicts("in", old, "ledger", since, false)) // it travelled already
	// A table with a column the batch lacks: the ledger holds the state
	// over every column here, so that is what it is compared with.
	wide := changed
	wide.Stored = "mine+extra"
	is.True(!rules.Conflicts("in", wide, "mine+extra", since, false)) // sync wrote it
	is.True(rules.Conflicts("in", wide, "mine", since, false))        // changed here since
}

func TestUnsynced(t *testing.T) {
	is := is.New(t)
	is.True(rules.Unsynced("anything", ""))
	is.True(rules.Unsynced(int64(10), "10"))
	is.True(!rules.Unsynced(int64(9), "10"))
	is.True(rules.Unsynced(int64(100), "99"))              // numbers, not text
	is.True(rules.Unsynced("2020-01-02", "10"))            // another kind of bound proves nothing
	is.True(rules.Unsynced(int64(5), "5@2020-01-01"))      // a row against the integer part
	is.True(!rules.Unsynced("2019-12-31", "5@2020-01-01")) // a tombstone against the time part
	is.True(!rules.Unsynced(3.5, "1"))                     // no cursor kind
}

func TestSoftDeleted(t *testing.T) {
	is := is.New(t)
	for _, v := range []any{nil, int64(0), uint64(0), 0.0, float32(0), false, "", "0", "false", []byte("0"), []byte(""), "0000-00-00 00:00:00"} {
		is.True(!rules.SoftDeleted(v)) // not deleted
	}
	for _, v := range []any{int64(1), true, "true", []byte("1"), "2020-01-01 00:00:00", "yes"} {
		is.True(rules.SoftDeleted(v)) // deleted
	}
}

func TestRangeHash(t *testing.T) {
	is := is.New(t)
	a := rules.RowHash([]string{"id", "v"}, []any{int64(1), []byte("x")})
	b := rules.RowHash([]string{"id", "v"}, []any{int64(2), []byte("y")})
	h := rules.RangeHash([]byte("s"), a, b)
	is.Equal(len(h), 16)
	is.Equal(h, rules.RangeHash([]byte("s"), a, b))
	is.True(string(h) != string(rules.RangeHash([]byte("s"), b, a)))    // ordered
	is.True(string(h) != string(rules.RangeHash([]byte("t"), a, b)))    // salted
	is.True(string(h) != string(rules.RangeHash([]byte("s"), a, a, b))) // every row counts
}
