package syncer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
)

// A pattern row on each side syncs every table it matches there, both
// ways; a matched table the far side lacks fails with its own error
// while the others go on; and the setup check names a pattern that
// matches nothing.
func TestTablePatternsSync(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind string) {
		is := is.New(t)
		ctx := context.Background()
		z := newZones(t, kind, zoneOpts{})
		ddl := func(n string) string {
			return "CREATE TABLE " + n + " (id BIGINT NOT NULL PRIMARY KEY, body VARCHAR(50) NULL, updated_at DATETIME(6) NULL)"
		}
		z.both(gapsync.Table{Name: "app_*", Direction: gapsync.Both, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}, ddl("app_1"), ddl("app_2"))
		mustExec(t, z.src(), ddl("app_3")) // not on the intranet
		is.NoErr(z.inet.Configure(ctx, gapsync.Table{Name: "nothing_*", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "updated_at", Enabled: true}))
		for _, n := range []string{"app_1", "app_2", "app_3"} {
			mustExec(t, z.src(), "INSERT INTO "+n+" (id, body, updated_at) VALUES (1, 'from internet', "+z.now+")")
		}
		mustExec(t, z.dst(), "INSERT INTO app_2 (id, body, updated_at) VALUES (2, 'from intranet', "+z.now+")")
		z.waitLag()
		r, err := z.runOnce()
		is.True(err != nil) // app_3 has no far side
		for _, e := range r.Tables {
			if e.Table == "app_3" {
				is.True(e.Err != nil)
			} else {
				is.NoErr(e.Err)
			}
		}
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM app_1 WHERE body = 'from internet'"), 1)
		is.Equal(count(t, z.dst(), "SELECT COUNT(*) FROM app_2 WHERE body = 'from internet'"), 1)
		is.Equal(count(t, z.src(), "SELECT COUNT(*) FROM app_2 WHERE body = 'from intranet'"), 1)

		ps, err := z.coord.Check(ctx)
		is.NoErr(err)
		var pattern, missing bool
		for _, p := range ps {
			pattern = pattern || (p.Table == "nothing_*" && strings.Contains(p.What, "matches no table"))
			missing = missing || p.Table == "app_3"
		}
		is.True(pattern) // the pattern that matches nothing is named
		is.True(missing) // and the matched table the intranet lacks
	})
}
