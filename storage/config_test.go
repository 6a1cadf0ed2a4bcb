package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

// Every sync_config field survives a write and a read.
func TestConfigRoundTrip(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		want := gapsync.Table{Name: "pages", Direction: gapsync.Both, Key: []string{"site", "id"}, Cursor: "changed",
			SoftDelete: "gone", SoftDeleteAs: "delete", FileColumns: []string{"html", "thumb"}, FilePattern: `src="/files/([^"]+)"`, Enabled: true}
		is.NoErr(db.Configure(ctx, want))
		got, err := db.Table(ctx, "pages", gapsync.Pull)
		is.NoErr(err)
		is.Equal(got, want)
	})
}

// A soft-delete or file column that the table lacks is a clear error, not
// a crash in the middle of a read.
func TestConfiguredColumnsMustExist(t *testing.T) {
	eachDB(t, func(t *testing.T, db *storage.DB) {
		is := is.New(t)
		ctx := context.Background()
		storage.MustExec(t, db, "CREATE TABLE t (id INTEGER PRIMARY KEY, u TEXT)")
		for _, tb := range []gapsync.Table{
			{Name: "t", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "u", SoftDelete: "deleted_flag", SoftDeleteAs: "delete", Enabled: true},
			{Name: "t", Direction: gapsync.Push, Key: []string{"id"}, Cursor: "u", FileColumns: []string{"attachment"}, Enabled: true},
		} {
			_, _, _, err := db.ReadPage(ctx, tb, gapsync.Window{To: "9999"}, nil, gapsync.Page{})
			is.True(errors.Is(err, gapsync.ErrUnknownColumn))
		}
	})
}
