package service_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/service"
)

func TestLoadOrder(t *testing.T) {
	is := is.New(t)
	file := filepath.Join(t.TempDir(), "gapsync.yaml")
	is.NoErr(os.WriteFile(file, []byte("db: from-file\ngateway: from-file\nstrip-prefix: /upload/\ninterval: 30s\nonce: true\n"+
		"table:\n  - a:id:ts\n  - b:id:ts:both\nchunk-size: 2MiB\n"), 0o600))
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	db := fs.String("db", "default", "")
	gw := fs.String("gateway", "default", "")
	strip := fs.String("strip-prefix", "", "")
	interval := fs.Duration("interval", 0, "")
	once := fs.Bool("once", false, "")
	lag := fs.String("lag", "2s", "")
	size := service.Bytes(0)
	fs.Var(&size, "chunk-size", "")
	var tables []string
	fs.Func("table", "", func(s string) error { tables = append(tables, s); return nil })
	t.Setenv("GAPSYNC_GATEWAY", "from-env")
	is.NoErr(service.Load(fs, []string{"-db", "from-flag", "-config", file}, "GAPSYNC_", "table"))
	is.Equal(*db, "from-flag")   // the command line wins
	is.Equal(*gw, "from-env")    // then the environment
	is.Equal(*strip, "/upload/") // then the file
	is.Equal(interval.String(), "30s")
	is.True(*once)
	is.Equal(*lag, "2s") // then the default
	is.Equal(int64(size), int64(2<<20))
	is.Equal(tables, []string{"a:id:ts", "b:id:ts:both"})
}

func TestLoadRefusesWhatItCannotUse(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	for content, want := range map[string]string{
		"strip-prefx: /upload/\n": `"strip-prefx" is not a setting`,
		"db:\n  - a\n  - b\n":     "takes one value, not a list",
		"db: [unclosed\n":         "config",
		"interval: soon\n":        "interval",
	} {
		file := filepath.Join(dir, "c.yaml")
		is.NoErr(os.WriteFile(file, []byte(content), 0o600))
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.String("db", "", "")
		fs.String("strip-prefix", "", "")
		fs.Duration("interval", 0, "")
		err := service.Load(fs, []string{"-config", file}, "GAPSYNC_")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: got %v, want an error with %q", content, err, want)
		}
	}
	// An empty file is no settings, not an error.
	file := filepath.Join(dir, "empty.yaml")
	is.NoErr(os.WriteFile(file, nil, 0o600))
	t.Setenv("GAPSYNC_CONFIG", file)
	is.NoErr(service.Load(flag.NewFlagSet("x", flag.ContinueOnError), nil, "GAPSYNC_"))
}

func TestSecretsFromFiles(t *testing.T) {
	is := is.New(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	is.NoErr(os.WriteFile(keys, []byte("k1:AAAA\n"), 0o600))
	t.Setenv("GAPSYNC_KEYS_FILE", keys)
	v, err := service.Secret("GAPSYNC_KEYS")
	is.NoErr(err)
	is.Equal(v, "k1:AAAA")
	t.Setenv("GAPSYNC_KEYS", "k2:BBBB")
	_, err = service.Secret("GAPSYNC_KEYS") // both set: ambiguous
	is.True(err != nil)

	pw := filepath.Join(dir, "pw")
	is.NoErr(os.WriteFile(pw, []byte("s3cr:et@\n"), 0o600))
	dsn, err := service.WithPasswordFile("sync@tcp(db:3306)/app", pw)
	is.NoErr(err)
	is.Equal(dsn, "sync:s3cr:et@@tcp(db:3306)/app")
	_, err = service.WithPasswordFile("sqlite:/x.db", pw)
	is.True(err != nil)
	dsn, err = service.WithPasswordFile("sync@tcp(db:3306)/app", "")
	is.NoErr(err)
	is.Equal(dsn, "sync@tcp(db:3306)/app")
}
