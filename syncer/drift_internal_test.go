package syncer

import (
	"context"
	"errors"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// The kinds of value column types hold, as the three engines spell them,
// and which changes of type keep every value.
func TestTypeKinds(t *testing.T) {
	is := is.New(t)
	for typ, kind := range map[string]string{
		"bigint(20) unsigned": "integer", "int(11)": "integer", "integer": "integer", "int8": "integer", "tinyint(1)": "integer",
		"decimal(10,2)": "decimal", "numeric": "decimal", "double": "float", "real": "float", "boolean": "bool",
		"bit(8)": "bits", "datetime(6)": "time", "timestamp with time zone": "time", "interval": "time", "year": "time",
		"longblob": "binary", "bytea": "binary", "varbinary(16)": "binary", "point": "binary",
		"jsonb": "json", "json": "json", "varchar(200)": "text", "character varying(20)": "text", "tinytext": "text",
		"enum('a','b')": "text", "uuid": "text",
	} {
		if got := typeKind(typ); got != kind {
			t.Errorf("typeKind(%q) = %q, want %q", typ, got, kind)
		}
	}
	is.True(compatibleTypes("int(11)", "bigint(20)"))
	is.True(compatibleTypes("int", "decimal(20,0)"))
	is.True(compatibleTypes("int", "varchar(30)"))
	is.True(compatibleTypes("varchar(10)", "text"))
	is.True(!compatibleTypes("varchar(10)", "int"))
	is.True(!compatibleTypes("datetime(6)", "bigint"))
	is.True(!compatibleTypes("blob", "varchar(10)"))
	is.True(!compatibleTypes("double", "bigint"))
}

// The far side's versions of conflicting rows come with the columns it
// has; they are put in the batch's order by name, and a version that
// does not fit the batch is refused rather than read out of bounds.
func TestAlignColumns(t *testing.T) {
	is := is.New(t)
	b := &batch.Batch{Columns: []batch.Column{{Name: "note"}, {Name: "id", Key: true}, {Name: "name"}}}
	local := &batch.Batch{Columns: []batch.Column{{Name: "id", Key: true}, {Name: "name"}},
		Rows: []batch.Row{{Values: []any{int64(7), "x"}}}}
	is.NoErr(alignColumns(local, b))
	is.Equal(local.Rows[0].Values, []any{nil, int64(7), "x"})
	is.Equal(len(local.Columns), 3)
	noKey := &batch.Batch{Columns: []batch.Column{{Name: "name"}}, Rows: []batch.Row{{Values: []any{"x"}}}}
	is.True(errors.Is(alignColumns(noKey, b), gapsync.ErrMalformed))
	stranger := &batch.Batch{Columns: []batch.Column{{Name: "id", Key: true}, {Name: "role"}}, Rows: []batch.Row{{Values: []any{int64(1), "admin"}}}}
	is.True(errors.Is(alignColumns(stranger, b), gapsync.ErrMalformed))
}

// A shape answer describes every configured table: the one asked for is
// picked by name, never the first.
func TestOneShapeByName(t *testing.T) {
	is := is.New(t)
	ss := []gapsync.Shape{{Name: "a", Exists: true}, {Name: "b", Exists: true}, {Name: "c"}}
	s, err := oneShape("b")(ss, nil)
	is.NoErr(err)
	is.Equal(s.Name, "b")
	_, err = oneShape("c")(ss, nil)
	is.True(errors.Is(err, gapsync.ErrUnknownTable))
}

// A receiving side can only lack columns the batch carried: a peer that
// names others (or more than there were) is refused before anything is
// recorded.
func TestNoteMissingOnlyColumnsSent(t *testing.T) {
	is := is.New(t)
	c := &Coordinator{} // no database: refused before any is used
	sent := []batch.Column{{Name: "id", Key: true}, {Name: "note"}}
	tb := gapsync.Table{Name: "items"}
	is.True(errors.Is(c.noteMissing(context.Background(), tb, gapsync.Push, sent, []string{"role"}), gapsync.ErrMalformed))
	is.True(errors.Is(c.noteMissing(context.Background(), tb, gapsync.Push, sent, []string{"note", "note", "note"}), gapsync.ErrMalformed))
	is.NoErr(c.noteMissing(context.Background(), tb, gapsync.Push, sent, nil))
}
