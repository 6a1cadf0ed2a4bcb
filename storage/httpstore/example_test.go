package httpstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage/httpstore"
)

// A read-only store of http(s) URLs that rows reference: only the hosts
// allowed are fetched, and internal addresses only where allowed.
func ExampleNew() {
	st, err := httpstore.New(&httpstore.Options{
		AllowHosts: []string{"files.example.com", "intranet-files:8080"},
		AllowAddrs: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}, // the intranet file server
	})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	_, err = st.Stat(context.Background(), "http://169.254.169.254/latest/meta-data/")
	fmt.Println(errors.Is(err, gapsync.ErrForbiddenURL))
	// Output: true
}
