package storage

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
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
		{sqlState("42703"), true},  // undefined column
		{sqlState("42P01"), true},  // undefined table
		{sqlState("42601"), false}, // a syntax error is the program's, not the data's
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
	for _, engine := range engines {
		t.Run(engine, func(t *testing.T) {
			is := is.New(t)
			db := openEngine(t, engine, nil)
			_, err := db.sql.ExecContext(ctx, "CREATE TABLE r (id INT PRIMARY KEY, v VARCHAR(5) NOT NULL, n INT NULL)")
			is.NoErr(err)
			_, err = db.sql.ExecContext(ctx, "INSERT INTO r (id, v) VALUES (1, NULL)")
			is.True(Rejected(err)) // NOT NULL
			_, err = db.sql.ExecContext(ctx, "INSERT INTO r (id, v, nope) VALUES (1, 'a', 1)")
			is.True(Rejected(err)) // unknown column
			_, err = db.sql.ExecContext(ctx, "INSERT INTO nope (id) VALUES (1)")
			is.True(Rejected(err)) // unknown table
			if engine != "sqlite" {
				_, err = db.sql.ExecContext(ctx, "INSERT INTO r (id, v) VALUES (1, 'too long')")
				is.True(Rejected(err)) // 1406, 22001
				_, err = db.sql.ExecContext(ctx, "INSERT INTO r (id, v, n) VALUES (1, 'a', 99999999999)")
				is.True(Rejected(err)) // 1264, 22003
			}
			_, err = db.sql.ExecContext(ctx, "INSERT INTO r (id, v) VALUES (2, 'ok')")
			is.NoErr(err)
		})
	}
}
