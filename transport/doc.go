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
// (400), an unknown key id, a failed authentication, a wrong endpoint or
// sender (401), a stale timestamp (401), and a message id it has accepted
// before, even in an earlier process (409). Those refusals carry only a
// short JSON body {"code": "...", "error": "..."} in clear: the client
// has not proven it holds a key, so it is told nothing more. Errors after
// authentication are sealed like any response.
//
// # Retries
//
// The client seals every attempt afresh (new message id, new timestamp),
// so a retry is never refused as a replay. It retries connection errors and
// 5xx answers with exponential backoff; it does not retry 4xx answers,
// which say the input itself is bad. Whether a retried request is safe is
// the endpoint's business: /v1/apply is idempotent by batch id.
//
// # Endpoints
//
//	POST /v1/apply   body: a batch (package batch); answer: JSON gapsync.Result
package transport
