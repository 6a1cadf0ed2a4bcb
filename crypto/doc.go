// Package crypto seals and opens the envelopes that carry every HTTP request
// and response body between the gapsync zones (for example "internet" and
// "intranet").
//
// An envelope is AES-256-GCM or SM4-GCM ciphertext (each key names its
// cipher) behind a small clear-text header.
// The header says which key sealed the envelope, identifies the message,
// and binds it to a sender zone, an endpoint, a time and, for responses, the
// request it answers. The header is not secret but it is authenticated: it
// is the additional data (AAD) of the GCM seal, so a changed header fails
// exactly like a changed ciphertext.
//
// A sender calls [Keyring.Seal]; a receiver calls [Keyring.Open] with
// [OpenOptions] naming what it expects. AES-256-GCM is the standard
// library's; SM4 (GB/T 32907, the national block cipher that Chinese
// security reviews ask for) is github.com/emmansun/gmsm's block, in the
// same GCM mode (GB/T 36624, RFC 8998): 16-byte blocks, 12-byte random
// nonces and 16-byte tags, so everything below holds for both.
//
// # Envelope layout
//
// All lengths are unsigned varints as written by encoding/binary
// (AppendUvarint), and must be minimally encoded. Byte by byte:
//
//	offset  size      field
//	0       1         'G' (0x47)
//	1       1         'S' (0x53)
//	2       1         'E' (0x45)
//	3       1         version: 1 for AES-256-GCM, 2 for any other cipher
//	(4)     1         version 2 only: cipher, 1 = SM4-GCM
//	4 (5)   1..2      headerLen, uvarint, at most 1024
//	...     headerLen header:
//	                    uvarint len + bytes  KeyID      1..32 chars [A-Za-z0-9._-]
//	                    uvarint len + bytes  MessageID  1..64 bytes
//	                    uvarint len + bytes  Sender     0..32 bytes
//	                    uvarint len + bytes  Endpoint   0..128 bytes
//	                    uvarint len + bytes  ReplyTo    0..64 bytes
//	                    8 bytes              Time, big-endian int64 Unix nanoseconds
//	...     12        nonce, random per message (crypto/rand)
//	...     rest      GCM ciphertext followed by the 16-byte tag (so >= 16 bytes)
//
// The header must be consumed exactly: no bytes may follow Time within
// headerLen. Anything that violates the layout or a limit is ErrMalformed,
// both when parsing and (for limits) when sealing. The envelope is
// 4 (5 in version 2) + len(varint(headerLen)) + headerLen + 12 +
// len(plaintext) + 16 bytes; the plaintext length is not hidden.
//
// AES-256-GCM envelopes are version 1, byte for byte as before there was a
// choice of cipher, so peers of older releases open them and old envelopes
// still open. A version 2 envelope naming AES-256-GCM, or a cipher this
// release does not know, is ErrMalformed: each envelope has one encoding.
// [Header.Cipher] reports the cipher (its zero value is AES-256-GCM).
//
// Seal fills in KeyID (always the active key id), MessageID (if empty: 32
// lowercase hex characters from 16 random bytes) and Time (if zero:
// time.Now()). Time is carried at nanosecond precision and comes back from
// Seal and Open in UTC.
//
// # What the AAD binds
//
// The AAD is every byte before the nonce: magic, version, the headerLen
// varint and the header bytes, exactly as they appear in the envelope. GCM
// therefore authenticates, together with the ciphertext:
//
//   - the format version and the cipher, so an envelope cannot be
//     reinterpreted under another version or cipher; Open also refuses an
//     envelope whose cipher is not its key's (ErrTampered), so a header
//     that claims the other cipher fails even before GCM is tried;
//   - KeyID, so it cannot be relabelled to another key;
//   - MessageID, the handle for replay detection;
//   - Time, checked against OpenOptions.MaxSkew, which bounds how long a
//     captured envelope stays usable;
//   - Sender, so a message sealed by one zone cannot be reflected back to
//     it as if the other zone had sent it (both zones share the keys);
//   - Endpoint, so a body sealed for one endpoint cannot be replayed to
//     another, and a response ("RESP /v1/apply") cannot pass as a request
//     ("POST /v1/apply");
//   - ReplyTo, so a response is tied to the request it answers and cannot
//     be swapped with the response to a different request.
//
// Authentication only proves that the header was written by a holder of
// the key. The binding is enforced only for the fields the receiver names
// in OpenOptions: servers should always set Endpoint and Sender, and
// clients opening a response should set Endpoint, Sender and ReplyTo to the
// MessageID returned by Seal for the request. An empty option skips its
// check.
//
// Open does not detect a replay inside the skew window. Callers that need
// that keep the MessageIDs they have accepted for at least 2*MaxSkew and
// reject repeats with an error wrapping ErrReplayed.
//
// [PeekHeader] parses the header without authenticating it, for logging
// and routing; nothing in its result may be trusted. Header values are
// arbitrary bytes: quote them (%q) when logging.
//
// # Key rotation
//
// A key is an id, a cipher and a secret: 32 bytes for AES-256-GCM, written
// "id:base64(secret)" (or "id:aes:base64(secret)"), and 16 bytes for
// SM4-GCM, written "id:sm4:base64(secret)" (see [Key.Encode] and
// [ParseKey]). A [Keyring] has one active key, which seals, and any number
// of older keys, which only open; their ciphers may differ. Its textual
// form for [ParseKeyring] is a comma-separated list whose first item is the
// active key, for example "2025-06:sm4:...,2025-01:...". Because the key id
// travels in the header, the receiver picks the right secret without trial
// decryption.
//
// Both zones seal and open, so rotate in three steps and finish each on
// every process of both zones before starting the next:
//
//  1. Add the new key as an older key: "old:...,new:...". Nothing seals
//     with it yet, but everyone can open it.
//  2. Make it active: "new:...,old:...". Envelopes sealed with the old key
//     that are still in flight keep opening.
//  3. Once every process has done step 2 and MaxSkew has passed (anything
//     sealed with the old key is now stale anyway), drop the old key:
//     "new:...".
//
// Skipping step 1 makes a receiver that has not been updated yet fail with
// ErrUnknownKey.
//
// Moving from AES-256-GCM to SM4-GCM is a rotation like any other: the new
// key is an SM4 key under a new id ("2026-sm4:sm4:...,2025-01:..." in step
// 1), and during the overlap each envelope opens under the cipher of the
// key it names. Give the new key a new id: one id held as AES by one zone
// and as SM4 by the other fails every envelope with ErrTampered.
//
// A server that answers with [Keyring.SealWith] under the key id of the
// request it answers (gapsync's transport does) shortens this when only
// one side starts exchanges: give the servers (the external zone) the ring
// "new:...,old:..." first, then the clients (the internet zone), then drop
// the old key. A server that already holds the new key still opens the
// clients' old-key requests and answers them under the old key, which the
// clients can open. The other order fails: a client sealing with a key the
// server does not hold yet gets ErrUnknownKey.
//
// # Messages per key
//
// Every envelope draws a fresh random 96-bit nonce (under either cipher:
// both are 128-bit block ciphers in the same GCM); there is no per-key
// message counter in the nonce. Two envelopes under one key with the same
// nonce would reveal the XOR of their plaintexts and let an attacker forge
// messages under that key, so the number of envelopes per key is bounded
// by the birthday bound: after n envelopes a repeat has probability about
// n^2 / 2^97. NIST SP 800-38D caps random-nonce GCM at 2^32 envelopes per
// key (a chance of about 2^-33); both zones seal under the same key, so
// their counts add up.
//
// A Keyring therefore counts the envelopes it seals under its active key
// ([Keyring.Sealed], for a gauge). At [KeyringOptions.WarnAt] (default
// three quarters of the limit) it logs a warning once; past
// [KeyringOptions.MaxMessages] (default [DefaultMaxMessages], 2^31, half
// the cap, leaving the other half to the other zone) Seal refuses with
// ErrKeyExhausted until a new key is made active. The count is per
// keyring, that is per process since it started: a deployment that
// restarts often or runs several sealing processes on one key should set
// a lower limit, or rotate on a schedule. At 100 envelopes a second, 2^31
// takes about eight months; rotating every few months is ample.
//
// # Errors
//
// Every error returned by Open and PeekHeader wraps exactly one of the
// sentinels below (test with errors.Is) and adds a short reason. Messages
// never contain key material or plaintext. "Retry" below means sending the
// same request again, sealed anew; resending the identical envelope bytes
// can never change the outcome (except for ErrUnknownKey after a key
// configuration change).
//
// A client must remember that a failure to open a response does not mean
// the request failed: the server may have applied it. Retrying after a
// response error is safe only for idempotent requests.
//
// ErrMalformed: the bytes are not a well-formed version 1 or 2 envelope
// (wrong magic, version or cipher, truncated, a length or limit violated). Typical causes
// are a body cut off or rewritten in transit, a peer speaking another
// version, or something that is not gapsync talking. Not retryable as is;
// a fresh request may succeed if the cause was a one-off transport fault.
// Seal also returns it for a header it cannot encode.
//
// ErrUnknownKey: the envelope names a key id the keyring does not hold.
// This is a configuration problem, usually a rotation done out of order
// (see above) or zones configured with different keyrings. Retrying does
// not help until the keyrings are fixed; afterwards it is safe.
//
// ErrTampered: authentication failed. Either the envelope names a cipher
// other than its key's (the zones hold one id under different ciphers, or
// the header was modified), or GCM rejected the envelope (the secret under
// that key id differs between the zones, or the header, nonce, ciphertext
// or tag was modified), or the authenticated header is
// bound to a different Endpoint, Sender or ReplyTo than the receiver
// expected; the message says which. Treat it as a security event and do
// not retry automatically: a misconfigured secret fails every time, and a
// modified or misdirected envelope must be dropped. A client receiving
// this for a response is in the "may have been applied" case above.
//
// ErrStale: the envelope authenticated but its Time is further than
// MaxSkew from the receiver's clock, in either direction. Causes are clock
// skew between the zones, a long delay (queueing, a stuck proxy), or a
// replayed old envelope. Retrying with a freshly sealed request is safe
// from this package's point of view (it gets a new Time and MessageID);
// if it keeps failing, fix the clocks.
//
// ErrKeyExhausted: returned by Seal, not Open. The keyring has sealed
// KeyringOptions.MaxMessages envelopes under its active key; rotate (see
// above). Retrying does not help until a new key is active.
//
// ErrReplayed: never returned by this package. It is the sentinel for
// replay guards built on MessageID. The envelope is authentic but was
// already accepted once; drop it. A legitimate sender retrying seals anew
// and so gets a new MessageID.
//
// Errors from Seal other than ErrMalformed (reading crypto/rand) and from
// GenerateKey, ParseKey, ParseKeyring and NewKeyring (invalid keys) wrap no
// sentinel; they are programming or configuration errors.
package crypto
