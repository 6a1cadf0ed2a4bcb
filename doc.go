// Package gapsync keeps databases in step between an internet zone and an
// intranet zone that may only meet through an external-zone service and
// an isolation device that passes database statements and nothing else.
//
// This root package holds the shared vocabulary: the sentinel errors
// (checked with errors.Is, each documented as retryable or not), the
// sync_config entry (Table), windows, pages and sync-log entries. The work
// is done by the packages below it.
//
// # Zones and roles
//
//	internet zone                 external zone                  intranet zone
//	┌───────────────────┐  HTTP  ┌────────────────────┐ SQL only ┌──────────────┐
//	│ syncer.Coordinator│ ─────▶ │ syncer.Gateway     │ ───────▶ │ intranet DB  │
//	│ internet DB       │ sealed │ (http.Handler)     │ isolation│              │
//	└───────────────────┘        └────────────────────┘  device  └──────────────┘
//
// Every exchange starts at the coordinator; the external zone never calls
// out, and the intranet never calls the external zone.
//
// # Packages
//
//   - gapsync (this one): errors, Table and ParseTable, windows, conflicts
//     and resolvers (NewestWins, ResolverFunc), file records and keys.
//   - syncer: the roles (Coordinator, Gateway, IntranetWorker) and the
//     interfaces they consume (ChangeSource, Journal, IsolationWriter,
//     Transport, FileStore).
//   - storage: the bun-backed adapter for MySQL/MariaDB, PostgreSQL and
//     SQLite (Open, Migrate, Configure), and the metadata schema.
//   - storage/sqltest: the conformance suite a database adapter proves
//     itself with.
//   - storage/localstore, storage/s3store, storage/httpstore: file stores
//     over a directory, an S3 bucket, and allowlisted http(s) URLs.
//   - storage/storeurl: a file store from one string (dir:PATH, s3://…).
//   - storage/filestoretest: the conformance suite for a file store.
//   - batch: the versioned binary format rows travel in, byte-exact.
//   - chunker: files split into verified chunks and merged back.
//   - pathmap: file references found in rows, normalised and rewritten.
//   - crypto: the sealed envelope (AES-256-GCM, key ids, rotation).
//   - transport: the HTTP client (go-retryablehttp) and server protocol.
//   - metrics: Prometheus metrics of the roles.
//   - service: what a long-running main needs: flags from the environment
//     and a config file, secrets from files, logs, health, TLS with reload,
//     startup that waits for the database.
//
// The example mains (examples/internet, examples/external,
// examples/intranet) are the three zones as processes; copy them into your
// project. Start with the quickstart, all three zones in one process on
// SQLite:
//
//	go run ./examples/quickstart
//
// # Promises
//
// Nothing lost or doubled (idempotent apply by batch id, windows that
// advance only after a logged success); exact values; windows from the
// database clock that do not skip late commits; sealed, replay-proof
// requests; bad input refused before anything is written. Each is a test;
// see the README for which.
package gapsync
