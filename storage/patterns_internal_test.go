package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// A pattern row stands for the tables of this database it matches; a
// table's own row wins over it, a more specific pattern over a wider one,
// gapsync's own tables never match, and the gateway's lookup of one
// table follows the same rules.
func TestTablePatternRows(t *testing.T) {
	EachEngine(t, &Options{Lag: time.Millisecond}, func(t *testing.T, db *DB) {
		is := is.New(t)
		ctx := context.Background()
		for _, n := range []string{"app_a", "app_b", "app_tmp_1", "other"} {
			MustExec(t, db, "CREATE TABLE "+n+" (id BIGINT NOT NULL PRIMARY KEY, body VARCHAR(20) NULL, updated_at DATETIME(6) NULL)")
		}
		cfg := func(name string, d gapsync.Direction, enabled bool) {
			is.NoErr(db.Configure(ctx, gapsync.Table{Name: name, Direction: d, Key: []string{"id"}, Cursor: "updated_at", Enabled: enabled}))
		}
		cfg("app_*", gapsync.Both, true)
		cfg("app_tmp_*", gapsync.Both, false) // keeps these out of app_*
		cfg("app_b", gapsync.Push, true)      // its own row: push only
		cfg("nothing_*", gapsync.Push, true)
		is.True(errors.Is(db.Configure(ctx, gapsync.Table{Name: "app_'*", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}),
			gapsync.ErrBadIdentifier))

		names := func(ts []gapsync.Table) []string {
			var out []string
			for _, t := range ts {
				out = append(out, t.Name)
			}
			return out
		}
		pull, err := db.Tables(ctx, gapsync.Pull)
		is.NoErr(err)
		is.Equal(names(pull), []string{"app_a"})
		is.Equal(pull[0].Direction, gapsync.Both)
		is.Equal(pull[0].Cursor, "updated_at")
		push, err := db.Tables(ctx, gapsync.Push)
		is.NoErr(err)
		is.Equal(names(push), []string{"app_a", "app_b"})
		is.Equal(push[1].Direction, gapsync.Push)

		// The gateway's lookup.
		tb, err := db.Table(ctx, "app_a", gapsync.Pull)
		is.NoErr(err)
		is.Equal(tb.Name, "app_a")
		_, err = db.Table(ctx, "app_b", gapsync.Pull) // its own row says push
		is.True(errors.Is(err, gapsync.ErrUnknownTable))
		_, err = db.Table(ctx, "app_tmp_1", gapsync.Push) // the disabled pattern wins
		is.True(errors.Is(err, gapsync.ErrUnknownTable))
		_, err = db.Table(ctx, "other", gapsync.Push)
		is.True(errors.Is(err, gapsync.ErrUnknownTable))
		db.Configure(ctx, gapsync.Table{Name: "sync_*", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true})
		_, err = db.Table(ctx, "sync_log", gapsync.Push) // metadata never matches
		is.True(errors.Is(err, gapsync.ErrUnknownTable))
		push, err = db.Tables(ctx, gapsync.Push)
		is.NoErr(err)
		is.Equal(names(push), []string{"app_a", "app_b"})

		m, err := db.PatternMatches(ctx)
		is.NoErr(err)
		is.Equal(m, map[string][]string{"app_*": {"app_a"}, "nothing_*": nil, "sync_*": nil})

		// The setup check and -status see the tables by name.
		shapes, err := db.Shapes(ctx, nil)
		is.NoErr(err)
		var described []string
		for _, s := range shapes {
			if s.Config != nil && s.Config.Enabled {
				described = append(described, s.Name)
			}
		}
		is.Equal(described, []string{"app_a", "app_b"})
	})
}

// ShapesOf describes the named tables alone, and only those configured
// here, as Shapes does.
func TestShapesOfNamedTables(t *testing.T) {
	is := is.New(t)
	db := openEngine(t, "sqlite", &Options{Lag: time.Millisecond})
	ctx := context.Background()
	is.NoErr(db.Migrate(ctx))
	for _, n := range []string{"app_a", "app_b", "secret"} {
		MustExec(t, db, "CREATE TABLE "+n+" (id BIGINT NOT NULL PRIMARY KEY, updated_at DATETIME(6) NULL)")
	}
	is.NoErr(db.Configure(ctx, gapsync.Table{Name: "app_*", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}))
	ss, err := db.ShapesOf(ctx, []string{"app_b", "secret"})
	is.NoErr(err)
	is.Equal(len(ss), 2)
	is.Equal(ss[0].Name, "app_b")
	is.True(ss[0].Exists && ss[0].Config != nil) // matched by the pattern: described
	is.Equal(ss[1].Name, "secret")
	is.True(!ss[1].Exists && ss[1].Config == nil) // not configured: a name alone
	all, err := db.Shapes(ctx, nil)
	is.NoErr(err)
	for _, s := range all {
		if s.Name == "app_b" { // the same description, the statement forms included
			is.Equal(s, ss[0])
			is.Equal(ss[0].Quote, `"`)
		}
	}
	_, err = db.ShapesOf(ctx, []string{"a;b"})
	is.True(errors.Is(err, gapsync.ErrBadIdentifier))
}
