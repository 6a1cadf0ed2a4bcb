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
//   - syncer: the roles (Coordinator, Gateway) and the interfaces they
//     consume (ChangeSource, Journal, IsolationWriter, Transport).
//   - storage: the bun-backed adapter for MySQL/MariaDB and SQLite, and
//     the metadata schema; storage/sqltest is its conformance suite.
//   - batch: the versioned binary format rows travel in, byte-exact.
//   - crypto: the sealed envelope (AES-256-GCM, key ids, rotation).
//   - transport: the HTTP client (go-retryablehttp) and server protocol.
//
// # Promises
//
// Nothing lost or doubled (idempotent apply by batch id, windows that
// advance only after a logged success); exact values; windows from the
// database clock that do not skip late commits; sealed, replay-proof
// requests; bad input refused before anything is written. Each is a test;
// see the README for which.
package gapsync
