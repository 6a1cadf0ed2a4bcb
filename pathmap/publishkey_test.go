package pathmap_test

import (
	"errors"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/pathmap"
)

// Published keys are injective: references that name different files get
// different keys, spellings of one file get one, and no path can take a
// URL's key.
func TestPublishKeyInjective(t *testing.T) {
	is := is.New(t)
	distinct := []string{
		"https://files.example.com/a/b.png",
		"http://files.example.com/a/b.png",        // scheme
		"https://files.example.com:8443/a/b.png",  // port
		"https://other.example.com/a/b.png",       // host
		"https://files.example.com/a/b.png?v=1",   // query
		"https://files.example.com/a/b.png?v=2",   // another query
		"https://files.example.com/a/b.png?",      // an empty query
		"https://files.example.com/a%2Fb.png",     // an escaped slash is not a slash
		"https://files.example.com/a%252Fb.png",   // nor is an escaped percent
		"https://files.example.com/a/b.png%3Fv=1", // an escaped '?' is not a query
		"files.example.com/a/b.png",               // a path
		"https/files.example.com/a/b.png",
	}
	seen := map[string]string{}
	for _, ref := range distinct {
		k, err := pathmap.PublishKey(ref, "")
		is.NoErr(err)
		is.NoErr(gapsync.CleanKey("from-internet/" + k))
		if prev, ok := seen[k]; ok {
			t.Fatalf("%q and %q share the key %q", prev, ref, k)
		}
		seen[k] = ref
		is.Equal(gapsync.FileID(gapsync.Internet, ref) == gapsync.FileID(gapsync.Internet, distinct[0]), ref == distinct[0])
	}
	same := [][]string{
		{"https://files.example.com/a/b.png", "HTTPS://Files.Example.com/a/b.png", "https://files.example.com/a/%62.png", "https://files.example.com/a/b.png#top"},
		{"docs/a b.png", "docs/a%20b.png", "docs/a%20b%2Epng", " docs/a b.png "},
	}
	for _, group := range same {
		k0, err := pathmap.PublishKey(group[0], "")
		is.NoErr(err)
		for _, ref := range group[1:] {
			k, err := pathmap.PublishKey(ref, "")
			is.NoErr(err)
			is.Equal(k, k0)
			is.Equal(gapsync.FileID(gapsync.Intranet, ref), gapsync.FileID(gapsync.Intranet, group[0]))
		}
	}
	// A path whose first element ends in ':' could take a URL's key (or
	// be a drive): refused.
	for _, ref := range []string{"https:/files.example.com/a/b.png", "https%3A/files.example.com/a/b.png", "C:/x.png"} {
		_, err := pathmap.PublishKey(ref, "")
		is.True(errors.Is(err, gapsync.ErrBadPath))
	}
}
