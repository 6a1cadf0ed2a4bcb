package service_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/matryer/is"

	"github.com/gapsync/gapsync/service"
)

// goType matches what a Go type name in a message looks like
// (*mysql.Config, net.OpError, s3.Options).
var goType = regexp.MustCompile(`\*?\b[a-z][a-z0-9]*\.[A-Z][A-Za-z]+\b|%!`)

func TestCheckDSN(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ dsn, want string }{
		{"mysql://app:secret@db:3306/app", "-db is a URL (mysql://…), which the MySQL driver does not take: write it as user:password@tcp(host:3306)/database"},
		{"app:secret@db:3306/app", "-db is not a MySQL DSN (the address must be inside tcp(…), as in tcp(host:3306)): want user:password@tcp(host:3306)/database"},
		{"app:secret@tcp(db:3306/app", "-db is not a MySQL DSN (network address not terminated (missing closing brace)): want"},
		{"app:secret@tcp(db:3306)", "-db is not a MySQL DSN (missing the slash separating the database name)"},
		{"app:secret@tcp(db:3306)/", "-db names no database: put its name after the slash, user:password@tcp(db:3306)/database"},
		{"app:secret@tcp(db:3306)/app?parseTime=maybe", "-db is not a MySQL DSN (invalid bool value: maybe)"},
		{"sqlite:" + dir + "/missing/app.db", "-db sqlite:" + dir + "/missing/app.db: the directory " + dir + "/missing does not exist: create it"},
		{"sqlite:", "-db is sqlite: with no path: want sqlite:PATH"},
		{"sqlite://" + dir + "/app.db", "-db is a URL (sqlite://…): write an SQLite database as sqlite:PATH"},
		{"oracle://db/app", "-db starts with oracle://, which is no database this program knows"},
		{"", "-db is empty"},
		{"host=db user=app password=secret dbname=app", "-db looks like a PostgreSQL keyword DSN (host=… dbname=…): write it as a URL, postgres://"},
	} {
		t.Run(c.dsn, func(t *testing.T) {
			is := is.New(t)
			err := service.CheckDSN("-db", c.dsn)
			is.True(err != nil)
			msg := err.Error()
			t.Log(msg)
			is.True(strings.HasPrefix(msg, c.want))
			is.True(!strings.Contains(msg, "\n"))
			is.True(!strings.Contains(msg, "secret")) // the password is not repeated
			is.Equal(goType.FindString(msg), "")      // no Go type names
		})
	}
	for _, ok := range []string{
		"app:secret@tcp(db:3306)/app?parseTime=true", "root@tcp(127.0.0.1:3306)/app", "app@unix(/run/mysqld/mysqld.sock)/app",
		"sqlite:" + filepath.Join(dir, "app.db"), "sqlite:app.db",
		"postgres://app:secret@db:5432/app?sslmode=disable", "postgresql://db/app",
	} {
		if err := service.CheckDSN("-db", ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

// TestOpenDBFailsFastOnABadDSN: a malformed DSN is not waited on.
func TestOpenDBFailsFastOnABadDSN(t *testing.T) {
	is := is.New(t)
	start := time.Now()
	_, err := service.OpenDB(context.Background(), nil, "sqlite:"+t.TempDir()+"/no/such/dir/app.db", nil, nil, false)
	is.True(err != nil)
	is.True(strings.Contains(err.Error(), "does not exist: create it"))
	is.True(time.Since(start) < time.Second)
}

func TestStoreUnreachableAtStart(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	fake := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
	defer fake.Close()
	for _, c := range []struct {
		store, want string
		nocreds     bool
	}{
		{"s3://bucket/p/?endpoint=http://127.0.0.1:1&path_style=1", "the S3 endpoint cannot be reached (dial tcp 127.0.0.1:1: connect: connection refused)", false},
		{"s3://bucket/p/?endpoint=http://no-such-host.invalid:9000&path_style=1", "the S3 endpoint's host name does not resolve", false},
		{"s3://nobucket/?endpoint=" + fake.URL + "&path_style=1", `bucket "nobucket" does not exist there: create it`, false},
		{"s3:bucket", "-store: storeurl:", false},
		{"s3://bucket/?endpoint=" + fake.URL + "&pathstyle=1", `unknown setting "pathstyle"`, false},
		{"s3://bucket/?endpoint=" + fake.URL + "&path_style=1", "no S3 credentials found: set AWS_ACCESS_KEY_ID", true},
	} {
		t.Run(c.store, func(t *testing.T) {
			is := is.New(t)
			if c.nocreds {
				t.Setenv("AWS_ACCESS_KEY_ID", "")
				t.Setenv("AWS_SECRET_ACCESS_KEY", "")
				t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
				t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
			}
			f := service.FileFlags{Store: c.store}
			_, err := f.Options(context.Background())
			is.True(err != nil)
			msg := err.Error()
			t.Log(msg)
			is.True(strings.HasPrefix(msg, "-store"))
			is.True(strings.Contains(msg, c.want))
			is.True(!strings.Contains(msg, "\n"))
			is.Equal(goType.FindString(msg), "")
		})
	}
}
