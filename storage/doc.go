// Package storage is gapsync's database adapter, built on bun: MySQL and
// MariaDB through mysqldialect and go-sql-driver/mysql, PostgreSQL through
// pgdialect and pgx, and SQLite (the embedded default) through bun's
// sqliteshim, pure Go. Everything that differs by engine is one dialect
// file each (dialect_mysql.go, dialect_postgres.go, dialect_sqlite.go),
// pure SQL text with golden tests; a MySQL and a PostgreSQL zone may be
// paired (values.go puts each value in the writing engine's form).
//
// A *DB implements syncer.InternetDB, syncer.IntranetDB, syncer.FileDB and
// transport.ReplayGuard (contracts.go), so one value serves a zone's
// database whatever its role.
//
// # Metadata tables
//
// Migrate creates them idempotently:
//
//   - sync_config: which tables may sync, in which direction, with their
//     key, cursor, soft-delete and file columns. Only tables enabled here
//     are ever read or written, on either side.
//   - sync_log: one row per run and table (internet side): window, counts,
//     bytes, status, error, timings. The audit trail, and where each
//     table's next window starts.
//   - sync_applied: the applied-batch ledger (writing side), committed in
//     the same transaction as the batch's rows. Entries of batches made
//     before the replay watermark are purged; such a batch is refused.
//   - sync_message: accepted message ids (gateway side) with the
//     envelope's sealed time, so replays are refused across restarts.
//   - sync_meta: named values; "replay_watermark" is the time before which
//     envelopes and batches are refused as stale (see Remember). It only
//     rises.
//
// # Exact values
//
// OpenMySQL fixes the session so values travel untouched: UTC session time
// zone, no client-side time parsing, server-side prepared statements (the
// binary protocol returns FLOAT and DOUBLE bit-exact; the text protocol
// rounds FLOAT to six digits), utf8mb4; behind a text-only device
// (DeviceProfile) values are written into the statements instead and
// FLOAT is read through a DOUBLE, exact too. SQLite columns are read through a
// unary plus so the driver does not turn DATETIME text into time.Time.
//
// # Windows
//
// A window is [from, to) over the configured cursor column. Its upper
// bound comes from the database clock, a configurable lag behind now, and
// on MySQL/MariaDB also before the start of any open transaction that has
// already written rows (SHOW ENGINE INNODB STATUS; needs PROCESS), since
// those rows carry cursor values older than their commit. Not
// information_schema.INNODB_TRX: that is a cache a read refreshes only
// when it went unread for 0.1 s, which a monitor polling it faster keeps
// frozen. Where the open transactions cannot be seen, the bound rests on
// the lag alone (logged once), an integer cursor's too: held at the
// MAX(cursor) seen a lag ago. The
// cursor column needs an index: CREATE INDEX ix_t_cursor ON t (cursor);
// InnoDB secondary indexes carry the primary key, so (cursor, key) keyset
// paging reads without a sort.
//
// # Isolation devices
//
// What the gateway sends through the device, as prepared statements (or,
// under a text-only DeviceProfile, plain ones) inside transactions:
//
//   - multi-row INSERT … ON DUPLICATE KEY UPDATE (SQLite and PostgreSQL:
//     ON CONFLICT DO UPDATE) for rows, sized by Options.MaxStatementRows
//     and Options.MaxStatementBytes so that a vendor device's statement
//     cap is respected (PostgreSQL: one statement of column arrays,
//     sized by MaxStatementBytes alone); on PostgreSQL with the default
//     profile, which passes everything, a first load's pages are copied
//     in (COPY … FROM STDIN) in a savepoint, upserted where that fails;
//   - INSERT into the ledgers (sync_applied, the version ledger,
//     sync_ref_origin), the replay table (sync_message), file_record and
//     file_chunk;
//   - DELETE FROM the synced table by primary key, for rows deleted on
//     the internet side; and DELETE of its own bookkeeping: replay entries
//     past the horizon, chunks acknowledged and past retention, ledger
//     entries of deleted rows;
//   - UPDATE of its own bookkeeping only: file records and chunks marked
//     acknowledged or synced, the replay horizon in sync_meta;
//   - SELECT.
//
// A device that passes only INSERT and SELECT cannot carry deletes or the
// file flow. Options.Device describes what a device passes; the statements
// are then checked against it before they are sent (see DeviceProfile). Note that ON DUPLICATE KEY UPDATE fires on any unique key,
// not only the primary key.
package storage
