package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
)

// The load table on PostgreSQL: the MariaDB table's columns in
// PostgreSQL's types (DOUBLE is double precision, TINYINT smallint,
// DATETIME(6) timestamp(6)).
const pgLoadDDL = `CREATE TABLE load_rows (
	id bigint NOT NULL PRIMARY KEY,
	name varchar(64) NOT NULL,
	amount numeric(14,2) NOT NULL,
	qty integer NOT NULL,
	ratio double precision NOT NULL,
	flag smallint NOT NULL,
	note varchar(120) NULL,
	updated_at timestamp(6) NOT NULL);
CREATE INDEX ix_load_rows_updated_at ON load_rows (updated_at)`

func pgEngine(base string) engine {
	return engine{
		name:  "PostgreSQL",
		fresh: func(name string) (string, error) { return pgFresh(base, name) },
		ddl:   pgLoadDDL, fill: pgFill, now: "now()", peers: []peer{{"pg_dump | psql", pgDumpPipe}},
		upsert: pgUpsert,
		// A checkpoint before each half: the fill's (or the other
		// half's) WAL is written out and does not land in the middle of
		// the next measurement.
		settle: func() error { return execSQL(base, "CHECKPOINT") },
	}
}

// pgFresh creates an empty UTF-8 database and returns its URL (named as
// fresh names them).
func pgFresh(base, name string) (string, error) {
	name = runName(name)
	drop := "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"
	if err := execSQL(base, drop, "CREATE DATABASE "+name+" ENCODING 'UTF8' TEMPLATE template0"); err != nil {
		return "", err
	}
	createdMu.Lock()
	created[base+"\x00"+drop] = true
	createdMu.Unlock()
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("-pg %q: want a postgres:// URL", base)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// pgFill generates n rows from a fixed seed on the server, like fillRows
// on MariaDB (about 200 bytes a row), stamped a minute in the past.
func pgFill(dsn string, n int) error {
	return execSQL(dsn, fmt.Sprintf(`INSERT INTO load_rows
		SELECT g, 'customer-' || lpad(g::text, 10, '0') || '-' || substr(md5(g::text), 1, 24),
		       (g * 7919 %% 1000000) / 100.0, g %% 100000, g / 7.0::float8, g %% 2,
		       '订单备注 note ' || md5(g::text) || substr(md5((g * 5)::text), 1, 8) || ' ' || substr(md5((g * 3)::text), 1, 20),
		       now() - interval '1 minute'
		FROM generate_series(1::bigint, %d) g`, n), "ANALYZE load_rows")
}

// pgUpsert is the statement a plain client sends to write rows over
// load_rows': a VALUES list, ON CONFLICT DO UPDATE.
func pgUpsert(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO load_rows (" + strings.Join(loadColumns, ", ") + ") VALUES ")
	for r := range rows {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for c := range loadColumns {
			if c > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "$%d", r*len(loadColumns)+c+1)
		}
		b.WriteString(")")
	}
	var set []string
	for _, c := range loadColumns[1:] {
		set = append(set, c+" = EXCLUDED."+c)
	}
	b.WriteString(" ON CONFLICT (id) DO UPDATE SET " + strings.Join(set, ", "))
	return b.String()
}

// pgDumpPipe runs pg_dump --data-only -t load_rows SRC | psql DST: COPY
// into the existing table, its indexes kept up as it goes, one
// transaction.
func pgDumpPipe(srcDSN, dstDSN string) (time.Duration, string, error) {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	script := "pg_dump --data-only -t load_rows -d " + q(srcDSN) +
		" | psql -q -X -v ON_ERROR_STOP=1 --single-transaction -d " + q(dstDSN) + " >/dev/null"
	cmd := exec.Command("bash", "-c", "set -o pipefail; "+script)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, "", fmt.Errorf("pg_dump | psql: %w", err)
	}
	return time.Since(start), "", nil
}
