// Package testdb gives tests fresh databases: a new MariaDB/MySQL schema
// per call (from GAPSYNC_TEST_MYSQL_DSN), a new PostgreSQL database (from
// GAPSYNC_TEST_PG_DSN), or a new SQLite file.
package testdb

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// EnvPG names the variable with a PostgreSQL URL whose user may create
// and drop databases, for example
// "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".
const EnvPG = "GAPSYNC_TEST_PG_DSN"

// EnvRequirePG, when "1", turns a skip for want of PostgreSQL into a
// failure.
const EnvRequirePG = "GAPSYNC_TEST_REQUIRE_PG"

// Postgres creates a new, empty UTF-8 database and returns a URL for it.
// The database is dropped when the test ends. Without GAPSYNC_TEST_PG_DSN
// the test is skipped, or fails when GAPSYNC_TEST_REQUIRE_PG=1.
func Postgres(t testing.TB) string {
	t.Helper()
	base := serverDSN(t, EnvPG, EnvRequirePG, "PostgreSQL")
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPG, err)
	}
	admin := stdlib.OpenDB(*cfg)
	defer admin.Close()
	name := "gapsync_t_" + randHex(6)
	if _, err := admin.Exec("CREATE DATABASE " + name + " ENCODING 'UTF8' TEMPLATE template0"); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		a := stdlib.OpenDB(*cfg)
		defer a.Close()
		a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		t.Fatalf("%s must be a postgres:// URL", EnvPG)
	}
	u.Path = "/" + name
	return u.String()
}

// EnvDSN names the variable with a MySQL DSN whose user may create and drop
// databases, for example "root@tcp(127.0.0.1:3306)/".
const EnvDSN = "GAPSYNC_TEST_MYSQL_DSN"

// EnvRequire, when "1", turns a skip for want of MySQL into a failure.
const EnvRequire = "GAPSYNC_TEST_REQUIRE_MYSQL"

// MySQL creates a new, empty utf8mb4 database and returns a DSN for it.
// The database is dropped when the test ends. Without GAPSYNC_TEST_MYSQL_DSN
// the test is skipped, or fails when GAPSYNC_TEST_REQUIRE_MYSQL=1.
func MySQL(t testing.TB) string {
	t.Helper()
	base := serverDSN(t, EnvDSN, EnvRequire, "MariaDB/MySQL")
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvDSN, err)
	}
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "gapsync_t_" + randHex(6)
	if _, err := admin.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec("DROP DATABASE IF EXISTS `" + name + "`")
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}

// serverDSN returns the DSN in env, or skips the test without it (fails
// it when require is "1").
func serverDSN(t testing.TB, env, require, server string) string {
	t.Helper()
	base := os.Getenv(env)
	if base == "" {
		if os.Getenv(require) == "1" {
			t.Fatalf("%s=1 but %s is not set", require, env)
		}
		t.Skipf("%s not set: skipping the %s test", env, server)
	}
	return base
}

// SQLite returns the path of a new SQLite file in the test's temp dir.
func SQLite(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), randHex(4)+".db")
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
