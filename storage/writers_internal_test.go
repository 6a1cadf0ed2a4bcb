package storage

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"
)

const innodbStatusHead = `
=====================================
2026-12-04 20:10:01 0x7f INNODB MONITOR OUTPUT
=====================================
------------
TRANSACTIONS
------------
Trx id counter 21738
Purge done for trx's n:o < 21737 undo n:o < 0 state: running but idle
History list length 0
LIST OF TRANSACTIONS FOR EACH SESSION:
`

const innodbStatusTail = `--------
FILE I/O
--------
----------------------------
END OF INNODB MONITOR OUTPUT
============================
`

// The open writers come from InnoDB's own report: each transaction's
// age, whether it modified rows, and its connection, in MariaDB's words
// and MySQL's; a statement's text is not taken for a transaction's lines;
// a report cut short is refused.
func TestParseInnodbWriters(t *testing.T) {
	is := is.New(t)
	d := mysqlDialect{}
	report := innodbStatusHead + `---TRANSACTION 421, not started
0 lock struct(s), heap size 1128, 0 row lock(s)
MariaDB thread id 7, OS thread handle 1, query id 9 localhost root
---TRANSACTION 21737, ACTIVE 12 sec
1 lock struct(s), heap size 1128, 0 row lock(s), undo log entries 1
MariaDB thread id 391, OS thread handle 131272831043264, query id 32321 127.0.0.1 root User sleep
INSERT INTO t VALUES ('undo log entries 5
MySQL thread id 999, OS thread handle 1')
---TRANSACTION 21740, ACTIVE 3 sec
mysql tables in use 1, locked 1
2 lock struct(s), heap size 1128, 1 row lock(s)
MySQL thread id 12, OS thread handle 2, query id 40 localhost app updating
SELECT * FROM t FOR UPDATE
---TRANSACTION 21741, ACTIVE (PREPARED) 40 sec
1 lock struct(s), heap size 1128, 0 row lock(s), undo log entries 3
MySQL thread id 13, OS thread handle 3, query id 41 localhost app
---TRANSACTION 21742, COMMITTED IN MEMORY
undo log entries 2
MySQL thread id 14, OS thread handle 4, query id 42 localhost app
` + innodbStatusTail
	got, err := d.parseWriters(report)
	is.NoErr(err)
	is.Equal(got, []openTrx{
		{conn: 391, age: 12 * time.Second, written: true}, // the statement's text added nothing
		{conn: 12, age: 3 * time.Second},                  // locks rows, modified none
		{conn: 13, age: 40 * time.Second, written: true},  // XA prepared
		{conn: 14, written: true},                         // committing: counted as just begun
	})
	// InnoDB's cut of a report at its 1 MiB limit.
	long := strings.Replace(report, "---TRANSACTION 21740", "---TRANSACTION 5, ACTIVE 1 sec\nMySQL thread id 5, x\n"+
		strings.Repeat("SELECT 'padding' FROM dual\n", innodbStatusMax/27)+"... truncated...\n---TRANSACTION 21740", 1)
	_, err = d.parseWriters(long)
	is.True(errors.Is(err, errReportCut))
	// A statement's own text with that line, in a short report, is text.
	got, err = d.parseWriters(strings.Replace(report, "SELECT * FROM t FOR UPDATE", "SELECT '\n... truncated...\n'", 1))
	is.NoErr(err)
	is.Equal(len(got), 4)
	_, err = d.parseWriters(report[:len(report)-len(innodbStatusTail)])
	is.True(errors.Is(err, errReportCut)) // no end line
	none, err := d.parseWriters(innodbStatusHead + innodbStatusTail)
	is.NoErr(err)
	is.Equal(len(none), 0)
	q, conns := d.writerReport()
	is.Equal(q, "SHOW ENGINE INNODB STATUS")
	is.True(strings.Contains(conns, "ID <> CONNECTION_ID()"))
}
