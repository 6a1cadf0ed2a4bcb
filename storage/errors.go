package storage

import (
	"errors"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/gapsync/gapsync"
)

// rejectedMySQL are the MySQL/MariaDB errors about the data itself: the
// same statement fails the same way however often it is retried.
var rejectedMySQL = map[uint16]bool{
	1048: true, // ER_BAD_NULL_ERROR: NULL into a NOT NULL column
	1054: true, // ER_BAD_FIELD_ERROR: unknown column
	1146: true, // ER_NO_SUCH_TABLE
	1264: true, // ER_WARN_DATA_OUT_OF_RANGE
	1265: true, // WARN_DATA_TRUNCATED
	1292: true, // ER_TRUNCATED_WRONG_VALUE: a bad date, time or number
	1364: true, // ER_NO_DEFAULT_FOR_FIELD
	1366: true, // ER_TRUNCATED_WRONG_VALUE_FOR_FIELD: a string outside the column's charset
	1367: true, // ER_ILLEGAL_VALUE_FOR_TYPE
	1406: true, // ER_DATA_TOO_LONG
	1416: true, // ER_CANT_CREATE_GEOMETRY_OBJECT
	1451: true, // ER_ROW_IS_REFERENCED_2: a delete a foreign key forbids
	1452: true, // ER_NO_REFERENCED_ROW_2: a foreign key with no parent
	1690: true, // ER_DATA_OUT_OF_RANGE
	3140: true, // ER_INVALID_JSON_TEXT (MySQL)
	3819: true, // ER_CHECK_CONSTRAINT_VIOLATED (MySQL)
	4025: true, // ER_CONSTRAINT_FAILED: a CHECK constraint (MariaDB)
}

// rejectedSQLite are fragments of SQLite's messages for the same kind of
// error, as both the pure-Go and the cgo driver spell them.
var rejectedSQLite = []string{
	"NOT NULL constraint failed",
	"CHECK constraint failed",
	"FOREIGN KEY constraint failed",
	"datatype mismatch",
	"no such column",
	"no such table",
	"has no column named",
}

// Rejected reports whether err is a database's refusal of the data
// itself (see gapsync.ErrRejected), which no retry can cure.
func Rejected(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, gapsync.ErrRejected) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return rejectedMySQL[me.Number]
	}
	// Drivers that report an SQLSTATE (PostgreSQL's pgconn.PgError, for
	// one): class 22 is a data exception, class 23 an integrity
	// constraint violation; 42703 and 42P01 are an unknown column and
	// table, as MySQL's 1054 and 1146.
	var ss interface{ SQLState() string }
	if errors.As(err, &ss) {
		st := ss.SQLState()
		return strings.HasPrefix(st, "22") || strings.HasPrefix(st, "23") || st == "42703" || st == "42P01"
	}
	msg := err.Error()
	for _, s := range rejectedSQLite {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// classify marks a driver error that rejects the data as
// gapsync.ErrRejected, keeping the driver's error in the chain; any other
// error comes back unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, gapsync.ErrRejected) || !Rejected(err) {
		return err
	}
	return &rejectedError{err}
}

type rejectedError struct{ err error }

func (e *rejectedError) Error() string        { return e.err.Error() }
func (e *rejectedError) Unwrap() error        { return e.err }
func (e *rejectedError) Is(target error) bool { return target == gapsync.ErrRejected }
