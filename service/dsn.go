package service

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// DSNForms is the expected form of a database setting, for messages.
const DSNForms = "user:password@tcp(host:3306)/database for MySQL or MariaDB, postgres://user:password@host:5432/database for PostgreSQL, or sqlite:PATH"

// CheckDSN reports, in one line that names setting (such as "-db") and the
// form it wants, what is wrong with a database DSN before anything tries
// to connect: a URL-style MySQL DSN (mysql://…), one that does not parse,
// one that names no database, or an SQLite path whose directory does not
// exist. The message never repeats the DSN, which may hold a password.
// PostgreSQL URLs (postgres:// and postgresql://) are passed through to
// the storage layer as they are.
func CheckDSN(setting, dsn string) error {
	dsn = strings.TrimSpace(dsn)
	if dsn == "" {
		return fmt.Errorf("%s is empty: want %s", setting, DSNForms)
	}
	if p, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		return checkSQLitePath(setting, p)
	}
	if scheme, _, ok := strings.Cut(dsn, "://"); ok && !strings.ContainsAny(scheme, "@/(") {
		switch strings.ToLower(scheme) {
		case "postgres", "postgresql":
			return nil
		case "mysql", "mariadb":
			return fmt.Errorf("%s is a URL (%s://…), which the MySQL driver does not take: write it as user:password@tcp(host:3306)/database", setting, scheme)
		case "sqlite", "sqlite3", "file":
			return fmt.Errorf("%s is a URL (%s://…): write an SQLite database as sqlite:PATH, e.g. sqlite:/var/lib/gapsync/app.db", setting, scheme)
		default:
			return fmt.Errorf("%s starts with %s://, which is no database this program knows: want %s", setting, scheme, DSNForms)
		}
	}
	if strings.Contains(dsn, "dbname=") || strings.HasPrefix(dsn, "host=") || strings.HasPrefix(dsn, "user=") {
		return fmt.Errorf("%s looks like a PostgreSQL keyword DSN (host=… dbname=…): write it as a URL, postgres://user:password@host:5432/database?sslmode=require", setting)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		reason := err.Error()
		if strings.Contains(reason, "default addr for network") {
			reason = "the address must be inside tcp(…), as in tcp(host:3306)"
		}
		return fmt.Errorf("%s is not a MySQL DSN (%s): want %s", setting, strings.TrimPrefix(reason, "invalid DSN: "), DSNForms)
	}
	if cfg.DBName == "" {
		return fmt.Errorf("%s names no database: put its name after the slash, user:password@tcp(%s)/database", setting, cfg.Addr)
	}
	return nil
}

func checkSQLitePath(setting, p string) error {
	if strings.HasPrefix(p, "//") {
		return fmt.Errorf("%s is a URL (sqlite://…): write an SQLite database as sqlite:PATH, e.g. sqlite:/var/lib/gapsync/app.db", setting)
	}
	if p == "" {
		return fmt.Errorf("%s is sqlite: with no path: want sqlite:PATH, e.g. sqlite:/var/lib/gapsync/app.db", setting)
	}
	if strings.Contains(p, "?") {
		return fmt.Errorf("%s sqlite:%s: want a plain file path, without ?options (gapsync sets its own)", setting, p)
	}
	dir := filepath.Dir(p)
	fi, err := os.Stat(dir)
	switch {
	case err != nil && os.IsNotExist(err):
		return fmt.Errorf("%s sqlite:%s: the directory %s does not exist: create it (the database file is made in it) or give a path in an existing directory", setting, p, dir)
	case err != nil:
		return fmt.Errorf("%s sqlite:%s: cannot look at the directory %s: %v", setting, p, dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%s sqlite:%s: %s is not a directory: want sqlite:DIR/FILE with DIR an existing directory", setting, p, dir)
	}
	return nil
}
