package transport_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/storage"
	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/transport"
)

// A coordinator whose pages or chunk batches could not be sent under the
// client's request cap is refused when it is made, with the settings to
// change, instead of failing every cycle.
func TestCoordinatorRefusesSizesOverRequestCap(t *testing.T) {
	is := is.New(t)
	db, err := storage.OpenSQLite(filepath.Join(t.TempDir(), "inet.db"), nil)
	is.NoErr(err)
	defer db.Close()
	key, _ := crypto.GenerateKey("t1")
	keys, _ := crypto.NewKeyring(key)
	c, err := transport.NewClient("http://127.0.0.1:1", keys, &transport.ClientOptions{MaxRequest: 4 << 20})
	is.NoErr(err)
	defer c.Close()
	st, err := localstore.New(t.TempDir(), nil)
	is.NoErr(err)

	_, err = syncer.NewCoordinator(db, c, nil) // default 4 MiB pages
	is.True(err != nil && strings.Contains(err.Error(), "Page.Bytes") && strings.Contains(err.Error(), "MaxRequest"))
	_, err = syncer.NewCoordinator(db, c, &syncer.CoordinatorOptions{Page: gapsync.Page{Bytes: 1 << 20},
		Files: &syncer.FileOptions{Store: st, BatchBytes: 1 << 20}}) // default 4 MiB chunks
	is.True(err != nil && strings.Contains(err.Error(), "Files.ChunkSize"))
	_, err = syncer.NewCoordinator(db, c, &syncer.CoordinatorOptions{Page: gapsync.Page{Bytes: 1 << 20},
		Files: &syncer.FileOptions{Store: st, ChunkSize: 1 << 20, BatchBytes: 4 << 20}})
	is.True(err != nil && strings.Contains(err.Error(), "Files.BatchBytes"))
	_, err = syncer.NewCoordinator(db, c, &syncer.CoordinatorOptions{Page: gapsync.Page{Bytes: 1 << 20},
		Files: &syncer.FileOptions{Store: st, ChunkSize: 1 << 20, BatchBytes: 3 << 20}})
	is.NoErr(err)

	// The defaults fit the default cap.
	c2, err := transport.NewClient("http://127.0.0.1:1", keys, nil)
	is.NoErr(err)
	defer c2.Close()
	_, err = syncer.NewCoordinator(db, c2, &syncer.CoordinatorOptions{Files: &syncer.FileOptions{Store: st}})
	is.NoErr(err)
}
