// Package syncer holds gapsync's roles and the small interfaces they
// consume.
//
// # Roles
//
//   - Coordinator (internet zone) runs cycles: for each table enabled for
//     push in the internet sync_config it takes the window [last
//     successful bound, database clock − lag), reads the changed rows in
//     pages, sends each page as a sealed batch to the gateway, and records
//     the run in sync_log. A window advances only when every batch of it
//     was applied and the run was logged.
//   - Gateway (external zone) is an http.Handler: it opens and checks each
//     envelope, refuses replays, decodes the batch and applies it through
//     its IsolationWriter, and returns the result that the coordinator
//     logs (seed 1.1.6).
//
// # Interfaces
//
// ChangeSource, Journal, IsolationWriter and Transport are each one small
// contract, documented on its methods: what errors mean, what is safe to
// retry. storage.DB implements the first three for MySQL/MariaDB and
// SQLite; transport.Client implements Transport. A user's own adapter
// proves itself with storage/sqltest.
package syncer
