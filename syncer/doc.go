// Package syncer holds gapsync's roles and the small interfaces they
// consume.
//
// # Roles
//
//   - Coordinator (internet zone) runs cycles under a lease: for each table
//     enabled in the internet sync_config it pulls (the intranet's changes
//     in [last pull bound, intranet clock − lag), page by page through the
//     gateway, applied to the internet database) and then pushes (the
//     internet's changes in [last push bound, internet clock − lag), sent
//     page by page to the gateway), settles conflicts with its Resolver,
//     and records each direction's run in sync_log. A window advances only
//     when every batch of it was applied and the run was logged.
//   - Gateway (external zone) is an http.Handler: it opens and checks each
//     envelope, refuses replays, and serves /v1/apply (write a batch
//     through the IsolationWriter and return the result that the
//     coordinator logs, seed 1.1.6), /v1/bound and /v1/pull (read the
//     intranet's changes through the IsolationReader, seed 1.2.4), and the
//     file endpoints (offer records and store chunks; list, fetch and
//     acknowledge intranet records and chunks).
//   - IntranetWorker (intranet zone) is the scheduled task that alone
//     touches the intranet store: it reads intranet files that outgoing
//     rows reference into the database as chunks, and publishes files
//     that came from the internet after verifying them.
//
// # Files
//
// With CoordinatorOptions.Files (and WorkerOptions.Files) each side has a
// FileStore. References found in the file columns of rows sent are
// recorded once each, staged as chunks by the side that owns the file,
// transferred with only the missing chunks, merged and verified on
// arrival, published under from-internet/ or from-intranet/, and every
// referencing row is rewritten to the local address.
//
// # Interfaces
//
// ChangeSource, Journal, IsolationWriter, IsolationReader, ConflictLog,
// Leaser and Transport are each one small contract, documented on its
// methods: what errors mean, what is safe to retry. InternetDB and
// IntranetDB bundle what each role needs; storage.DB is both, for
// MySQL/MariaDB, PostgreSQL and SQLite; transport.Client implements Transport. A
// user's own adapter proves itself with storage/sqltest.
package syncer
