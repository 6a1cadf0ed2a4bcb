package pathmap_test

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/pathmap"
)

// References in a row, their store keys, and the rewrite to where the far
// side published them.
func Example() {
	f := pathmap.Finder{Columns: []string{"body"}, Pattern: regexp.MustCompile(`src="([^"]+)"`)}
	names := []string{"id", "body"}
	row := []any{int64(1), `<p><img src="/upload/2026/a%20b.png"> <img src="https://cdn.example.com/logo.svg?v=2"></p>`}

	refs := f.Find(names, row)
	for _, r := range refs {
		key, err := pathmap.PublishKey(r, "/upload/")
		fmt.Printf("%s -> %s %v\n", r, key, err)
	}
	body, changed := f.RewriteAll(row[1], map[string]string{refs[0]: "/files/from-internet/2026/a b.png"})
	fmt.Println(changed, body)

	_, err := pathmap.Normalize("..%2F..%2Fetc%2Fpasswd", "")
	fmt.Println(errors.Is(err, gapsync.ErrBadPath))
	// Output:
	// /upload/2026/a%20b.png -> 2026/a b.png <nil>
	// https://cdn.example.com/logo.svg?v=2 -> https:/cdn.example.com/logo.svg?269fc203435a89d1be3a866cd958674c <nil>
	// true <p><img src="/files/from-internet/2026/a b.png"> <img src="https://cdn.example.com/logo.svg?v=2"></p>
	// true
}
