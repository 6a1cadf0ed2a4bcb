package storeurl_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gapsync/gapsync/storage/storeurl"
	"github.com/gapsync/gapsync/syncer"
)

// Open takes what a -store flag holds: dir:PATH, or
// s3://BUCKET/PREFIX?endpoint=…&path_style=1&checksum=when_required.
func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gapsync-example-")
	defer os.RemoveAll(dir)

	st, err := storeurl.Open(ctx, "dir:"+dir)
	if err != nil {
		panic(err)
	}
	body := "annual report 年报\n"
	if err := st.Put(ctx, "2026/report.txt", strings.NewReader(body), int64(len(body)), syncer.FileInfo{}); err != nil {
		panic(err)
	}
	info, _ := st.Stat(ctx, "2026/report.txt")
	r, _ := st.OpenRange(ctx, "2026/report.txt", 14, info.Size-14)
	rest, _ := io.ReadAll(r)
	r.Close()
	fmt.Printf("%d bytes, ending %q\n", info.Size, rest)

	_, err = storeurl.Open(ctx, "s3://bucket/?checksum=sometimes")
	fmt.Println(err)
	// Output:
	// 21 bytes, ending "年报\n"
	// storeurl: "s3://bucket/?checksum=sometimes": checksum=sometimes: want when_supported (the default) or when_required (older Ceph and vendor stores)
}
