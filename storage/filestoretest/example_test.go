package filestoretest_test

import (
	"testing"

	"github.com/gapsync/gapsync/storage/filestoretest"
	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/syncer"
)

// How to prove a file store of your own: in its package's tests, run the
// suite with a harness that makes a new, empty store per subtest. Features
// says what the store keeps beyond the bytes (checksums from Put, versions
// for syncer.VersionedStore). Run it with go test; here the store is
// localstore, which keeps versions but no checksums.
func ExampleRun() {
	_ = func(t *testing.T) { // func TestConformance(t *testing.T) in your _test.go file
		filestoretest.Run(t, filestoretest.Harness{
			New: func(t *testing.T) syncer.FileStore {
				st, err := localstore.New(t.TempDir(), nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			},
			Features: filestoretest.Features{Versions: true},
		})
	}
}
