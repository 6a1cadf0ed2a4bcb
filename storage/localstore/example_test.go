package localstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/syncer"
)

// A directory as a file store: Put replaces a file atomically, keys are
// clean relative paths, and nothing resolves outside the directory.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gapsync-example-")
	defer os.RemoveAll(dir)

	st, err := localstore.New(dir, nil)
	if err != nil {
		panic(err)
	}
	defer st.Close()
	body := "%PDF-1.7\n"
	if err := st.Put(ctx, "from-internet/2026 年报.pdf", strings.NewReader(body), int64(len(body)), syncer.FileInfo{}); err != nil {
		panic(err)
	}
	info, _ := st.Stat(ctx, "from-internet/2026 年报.pdf")
	fmt.Println(info.Key, info.Size)

	_, err = st.Stat(ctx, "../etc/passwd")
	fmt.Println(errors.Is(err, gapsync.ErrBadPath))
	// Output:
	// from-internet/2026 年报.pdf 9
	// true
}
