// Package throttle keeps a sync from hurting the databases it copies
// between: every copier asks a *Throttler before each page or chunk batch,
// and the Throttler holds it back as long as a limit asks.
//
// # Rates
//
// Limits cap rows per second and payload bytes per second, for all tables
// together (Options.Overall) and per table (Options.Tables); a table named
// in Tables obeys both. Options.FileBytes caps the file chunks moved per
// second. A zero limit is no limit. Each limit is a token bucket
// (golang.org/x/time/rate) that starts empty and holds at most a tenth of a
// second's worth, so a copy of N rows at R rows per second takes at least
// N/R seconds whatever its page size, and an idle moment buys no burst
// worth speaking of. A page is paid for before it goes: Wait returns when
// the page may be sent.
//
// # Busy pause
//
// A Probe measures a database: how many statements run on it now, and how
// long the measurement took (the latency of a trivial statement). The
// storage adapter's *storage.DB is one: MySQL and MariaDB read
// SHOW GLOBAL STATUS LIKE 'Threads_running', PostgreSQL counts the active
// client backends in pg_stat_activity, SQLite reports latency only. While
// any probed database reads over Options.MaxRunning or
// Options.MaxLatency, every Wait pauses; the Throttler probes again every
// Options.Interval, logs when the pause starts and ends, and copying goes
// on once every database is under its limits. This is gh-ost's max-load
// idea, applied to each page: load on production is a setting.
//
// A probe that fails is logged and counts as not busy, so that a missing
// privilege does not stop the sync; a probe that does not answer within
// its timeout counts as over MaxLatency when that is set.
//
// # Metrics
//
// A Recorder (a *metrics.Metrics is one) receives the time each table spent
// held back and why (ReasonRows, ReasonBytes, ReasonFiles, ReasonRunning,
// ReasonLatency), whether each probed database is busy now, and its last
// reading.
//
// A nil *Throttler never waits, so a copier calls it unconditionally.
package throttle
