package gapsync

import (
	"errors"

	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/crypto"
)

// Sentinel errors. Every error that gapsync returns wraps at most one of
// these, so callers can branch with errors.Is. Each says whether retrying
// the same call can help.
var (
	// ErrUnknownTable: the table is not enabled in sync_config on the side
	// that was asked. Not retryable until an operator configures it.
	ErrUnknownTable = errors.New("gapsync: table not configured for sync")

	// ErrUnknownColumn: a batch names a column the target table does not
	// have, or omits a primary-key column. Not retryable.
	ErrUnknownColumn = errors.New("gapsync: column not in target table")

	// ErrBadIdentifier: a table or column name does not match the allowed
	// identifier syntax (letters, digits, _ and $; no quotes or backticks).
	// Not retryable.
	ErrBadIdentifier = errors.New("gapsync: invalid SQL identifier")

	// ErrTooLarge: a request body or statement exceeds a configured cap.
	// Not retryable with the same input.
	ErrTooLarge = errors.New("gapsync: body too large")

	// ErrLeaseHeld: another coordinator holds the lease. Retry later.
	ErrLeaseHeld = errors.New("gapsync: lease held by another coordinator")

	// ErrUnsupportedCursor: a table's cursor column has a type that cannot
	// carry every change (not DATETIME/TIMESTAMP, not an integer), or a
	// feature the cursor's kind does not allow was asked for. Not
	// retryable until the configuration changes; the message says how.
	ErrUnsupportedCursor = errors.New("gapsync: unsupported cursor")

	// ErrBusy: the gateway is at its limit of concurrent requests or of
	// request bytes in flight, and refused before reading the body.
	// Retryable after a pause (the answer's Retry-After).
	ErrBusy = errors.New("gapsync: gateway busy")

	// ErrTooSlow: a request body arrived slower than the gateway's minimum
	// rate, or not within its read timeout. Retryable.
	ErrTooSlow = errors.New("gapsync: request body too slow")

	// ErrRejected: the database refused the data itself (a value it cannot
	// store: a string outside the column's character set, too long, out
	// of range, NULL into NOT NULL, a failed CHECK or foreign key, an
	// unknown column). Not retryable: the same rows fail again until an
	// operator fixes the table or the data; the coordinator parks the
	// table in that direction and the others go on.
	ErrRejected = errors.New("gapsync: data rejected by the database")

	// ErrSchemaDrift: the two sides of a table no longer fit: a column was
	// dropped on the sending side while the receiving side still has it,
	// or a column's type changed into another kind of value than the
	// other side holds. Not retryable: the coordinator parks the table in
	// that direction with the reason and the fix, nothing of it is
	// written, and the others go on. A column added on one side only is
	// not drift of this kind: the shared columns keep syncing (see
	// Result.Missing).
	ErrSchemaDrift = errors.New("gapsync: schema drift")

	// ErrRemote: the far side failed in a way it did not classify (HTTP 5xx,
	// database error). Retrying is safe: every apply is idempotent.
	ErrRemote = errors.New("gapsync: remote side failed")

	// The wire-format and envelope errors are shared with the packages that
	// produce them, so errors.Is works whichever package you import.
	ErrMalformed   = batch.ErrMalformed   // a batch did not parse; not retryable
	ErrBadEnvelope = crypto.ErrMalformed  // an envelope did not parse; not retryable
	ErrTampered    = crypto.ErrTampered   // authentication failed; not retryable
	ErrUnknownKey  = crypto.ErrUnknownKey // key id unknown to the receiver; retry after key rollout
	ErrStale       = crypto.ErrStale      // timestamp outside the skew window; check clocks
	ErrReplayed    = crypto.ErrReplayed   // message id seen before; the sender must reseal
)

// Code is the short, stable name of a sentinel error as it travels on the
// wire between the gateway and the coordinator.
type Code string

var codes = []struct {
	code Code
	err  error
}{
	{"unknown_table", ErrUnknownTable},
	{"unknown_column", ErrUnknownColumn},
	{"bad_identifier", ErrBadIdentifier},
	{"too_large", ErrTooLarge},
	{"busy", ErrBusy},
	{"too_slow", ErrTooSlow},
	{"malformed", ErrMalformed},
	{"bad_envelope", ErrBadEnvelope},
	{"tampered", ErrTampered},
	{"unknown_key", ErrUnknownKey},
	{"stale", ErrStale},
	{"replayed", ErrReplayed},
	{"lease_held", ErrLeaseHeld},
	{"unsupported_cursor", ErrUnsupportedCursor},
	{"rejected", ErrRejected},
	{"schema_drift", ErrSchemaDrift},
	{"bad_path", ErrBadPath},
	{"forbidden_url", ErrForbiddenURL},
	{"read_only", ErrReadOnly},
	{"checksum_mismatch", ErrChecksumMismatch},
	{"digest_mismatch", ErrDigestMismatch},
}

// CodeOf returns the wire code of the first sentinel err wraps, or
// "internal" when it wraps none.
func CodeOf(err error) Code {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}

// ErrorOf returns the sentinel for a wire code; unknown codes map to ErrRemote.
func ErrorOf(c Code) error {
	for _, x := range codes {
		if x.code == c {
			return x.err
		}
	}
	return ErrRemote
}

// File-flow sentinels.
var (
	// ErrBadPath: a file key or name is not a clean relative path (empty,
	// absolute, "..", backslash, NUL, or an encoded form of those). Not
	// retryable.
	ErrBadPath = errors.New("gapsync: file path not allowed")

	// ErrForbiddenURL: a file URL is outside the allowlist, or resolves to a
	// loopback, private, link-local or metadata address (SSRF). Not
	// retryable.
	ErrForbiddenURL = errors.New("gapsync: file URL not allowed")

	// ErrReadOnly: the file store cannot be written (an HTTP source).
	ErrReadOnly = errors.New("gapsync: file store is read-only")

	// ErrChecksumMismatch: merged bytes do not match the recorded MD5 or
	// SHA-256. Retryable: the file is transferred again.
	ErrChecksumMismatch = errors.New("gapsync: file checksum mismatch")

	// ErrChanged: a file changed while it was being read (a range is not
	// of the version its reading began with), so what was read may mix
	// old and new bytes. Retryable: read the file again from the start.
	ErrChanged = errors.New("gapsync: file changed while being read")

	// ErrDigestMismatch: the zones disagree on the file digest setting
	// (syncer.FileOptions.Digest, -file-digest): one side's file records
	// carry an SM3 digest and the other does not expect one, or the
	// reverse. Refused when a file is offered; not retryable until the
	// setting is the same on all three mains.
	ErrDigestMismatch = errors.New("gapsync: file digest settings differ between the zones")
)
