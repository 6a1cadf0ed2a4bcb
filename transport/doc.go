// Package transport is the wire protocol between the internet zone's
// coordinator and the external zone's gateway: an HTTP client built on
// go-retryablehttp, and an http.Handler that serves sealed requests.
//
// # Requests and responses
//
// Every request is an HTTP POST whose body is a crypto envelope (see
// package crypto) sealed by the sender zone "internet" for the endpoint
// "POST <path>". Every successful response is an envelope sealed by
// "external" for "RESP <path>" whose ReplyTo is the request's message id,
// so a response cannot be replayed or swapped onto another request.
//
// The server refuses, before any handler runs and so before anything is
// written: a body over the size cap (413), an envelope that does not parse
// or a body cut short (400), an unknown key id, a failed authentication, a
// wrong endpoint or sender (401), a stale timestamp (401), and a message id
// it has accepted before, even in an earlier process (409). Those refusals
// carry only a short JSON body {"code": "...", "error": "..."} in clear and
// close the connection: the client has not proven it holds a key, so it is
// told nothing more. Everything after authentication, errors included (a
// failing replay guard too), is sealed like any response.
//
// The client believes an answer in clear only for those envelope-level
// codes (too_large, busy, too_slow, bad_envelope, tampered, unknown_key,
// stale, replayed), each with its own status; any other code in clear, such
// as lease_held or unknown_table, could come from anyone on the path and is
// reported as gapsync.ErrRemote. The text of an answer in clear is cut to
// 512 bytes, and of a sealed one to 4 KiB, before it reaches a log.
//
// # Limits
//
// A caller without a key must not be able to make the gateway hold memory
// or connections. ServerOptions sets, with these defaults:
//
//	MaxBody            16 MiB   larger announced length: 413 before reading
//	MaxConcurrent      32       requests served at once; past it 503 + Retry-After
//	MaxInFlightBytes   64 MiB   announced body bytes held at once (bodies of
//	                            64 KiB or less do not count); past it 503
//	MinBodyRate        32 KiB/s slowest body once BodyGrace has passed: 408
//	BodyGrace          10 s     before the rate applies; longest stall after a burst
//	ReadHeaderTimeout  10 s     TLS handshake and headers
//	ReadTimeout        2 min    the whole body, however fast
//	WriteTimeout       1 min    writing an answer
//	IdleTimeout        1 min    an idle keep-alive connection
//	MaxHeaderBytes     64 KiB   request headers
//	RetryAfter         2 s      what a 503 asks the client to wait
//
// A body is read in pieces as it arrives (the buffer doubles, never past
// the announced length), so memory follows what a caller has sent, not what
// it claims. NewHTTPServer makes the http.Server with the connection
// timeouts; a main passes it the same options as the Server. The client's
// ClientOptions.MaxRequest (default 16 MiB) should equal MaxBody: a larger
// request fails at once with gapsync.ErrTooLarge instead of being sent.
// Refusals are counted by cause through ServerOptions.Observe.
//
// # Retries
//
// The client seals every attempt afresh (new message id, new timestamp),
// so a retry is never refused as a replay. It retries connection errors,
// 5xx answers and 408 (too slow) with exponential backoff, honouring a
// 503's Retry-After up to RetryWaitMax; it does not retry other 4xx
// answers, which say the input itself is bad. Whether a retried request is safe is
// the endpoint's business: /v1/apply is idempotent by batch id.
//
// # Endpoints
//
// Every one is a sealed POST; syncer.Gateway registers them (NewServer
// with Handle, for a host project's own).
//
//	/v1/apply             a batch of rows (package batch) → JSON gapsync.Result
//	/v1/bound             a table → the intranet's window bound (database clock minus lag)
//	/v1/pull              table, window, position → the next page of intranet changes (a batch)
//	/v1/shape             table names → the shape of those and the intranet's sync tables (setup check)
//	/v1/files/offer       internet file records → per file, the chunk indexes still lacking
//	/v1/files/chunks      internet chunks → how many were stored
//	/v1/files/records     a limit → intranet file records not yet acknowledged
//	/v1/files/ack         record ids → acknowledged
//	/v1/files/get-chunks  a file id and chunk indexes → those intranet chunks
//	/v1/files/ack-chunks  a file id and chunk indexes → acknowledged (purged later)
//	/v1/files/get-page    up to 256 files' ids and chunk indexes → those intranet chunks
//	/v1/files/ack-page    the same → acknowledged, and the files so completed delivered, in one transaction
//
// A gateway from before the pages answers them 404; Client's error then
// wraps ErrNoEndpoint, and the coordinator uses get-chunks and
// ack-chunks instead.
//
// The external main also answers GET /healthz and /readyz on the same
// port, in clear and without detail (package service).
package transport
