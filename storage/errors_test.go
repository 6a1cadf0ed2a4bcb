package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/internal/testdb"
)

type sqlState string

func (s sqlState) Error() string    { return "pg: " + string(s) }
func (s sqlState) SQLState() string { return string(s) }

func TestClassifyRejected(t *testing.T) {
	is := is.New(t)
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&mysql.MySQLError{Number: 1366, Message: "Incorrect string value"}, true},
		{fmt.Errorf("apply: %w", &mysql.MySQLError{Number: 1406}), true},
		{&mysql.MySQLError{Number: 1048}, true},
		{&mysql.MySQLError{Number: 1213, Message: "Deadlock found"}, false}, // retry helps
		{&mysql.MySQLError{Number: 1205, Message: "Lock wait timeout"}, false},
		{mysql.ErrInvalidConn, false},
		{context.DeadlineExceeded, false},
		{sqlState("22001"), true},  // string data, right truncation
		{sqlState("23502"), true},  // not null violation
		{sqlState("40001"), false}, // serialization failure: retry helps
		{errors.New("database is locked"), false},
	} {
		is.Equal(Rejected(c.err), c.want)
		got := classify(c.err)
		is.Equal(errors.Is(got, gapsync.ErrRejected), c.want)
		var me *mysql.MySQLError
		is.Equal(errors.As(got, &me), errors.As(c.err, &me)) // the driver's error stays in the chain
	}
}

// A real refusal on each engine is classified.
func TestClassifyRealErrors(t *testing.T) {
	ctx := context.Background()
	dbs := map[string]func() (*DB, error){
		"sqlite":  func() (*DB, error) { return OpenSQLite(testdb.SQLite(t), nil) },
		"mariadb": func() (*DB, error) { return OpenMySQL(testdb.MySQL(t), nil) },
	}
	for name, open := range dbs {
		t.Run(name, func(t *testing.T) {
			is := is.New(t)
			db, err := open()
			is.NoErr(err)
			defer db.Close()
			_, err = db.sql.ExecContext(ctx, "CREATE TABLE r (id INT PRIMARY KEY, v VARCHAR(5) NOT NULL, n INT NULL)")
			is.NoErr(err)
			_, err = db.sql.ExecContext(ctx, "INSERT INTO r (id, v) VALUES (1, NULL)")
			is.True(Rejected(err)) // NOT NULL
			_, err = db.sql.ExecContext(ctx, "INSERT INTO r (id, v, nope) VALUES (1, 'a', 1)")
			is.True(Rejected(err)) // unknown column
			if name == "mariadb" {
				_, err = db.sql.ExecContext(ctx, "INSERT INTO r (id, v) VALUES (1, 'too long')")
				is.True(Rejected(err)) // 1406
				_, err = db.sql.ExecContext(ctx, "INSERT INTO r (id, v, n) VALUES (1, 'a', 99999999999)")
				is.True(Rejected(err)) // 1264
			}
			_, err = db.sql.ExecContext(ctx, "INSERT INTO r (id, v) VALUES (2, 'ok')")
			is.NoErr(err)
		})
	}
}
