package crypto

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Errors returned by this package. Every error from Open and PeekHeader
// wraps exactly one of them (test with errors.Is); see the package
// documentation for what each means and whether retrying is safe.
var (
	ErrMalformed  = errors.New("gapsync/crypto: malformed envelope")
	ErrUnknownKey = errors.New("gapsync/crypto: unknown key id")
	ErrTampered   = errors.New("gapsync/crypto: envelope failed authentication")
	ErrStale      = errors.New("gapsync/crypto: envelope timestamp outside allowed skew")
	// ErrKeyExhausted is returned by Seal once the keyring has sealed
	// KeyringOptions.MaxMessages envelopes under its active key. Rotate.
	ErrKeyExhausted = errors.New("gapsync/crypto: active key reached its message limit")
	// ErrReplayed is never returned by this package. It is the shared
	// sentinel for replay guards built on Header.MessageID.
	ErrReplayed = errors.New("gapsync/crypto: envelope replayed")
)

const (
	// Version 1 is AES-256-GCM, the only cipher it has; version 2 names
	// the cipher in the byte after the version. AES-256-GCM envelopes are
	// still sealed as version 1, so that peers of older releases open
	// them: a version 2 envelope naming AES-256-GCM is malformed, and
	// each envelope has one encoding.
	version1       = 1
	version2       = 2
	prefixLen      = 4 // 'G', 'S', 'E', version (+ cipher in version 2)
	nonceSize      = 12
	tagSize        = 16
	maxHeaderLen   = 1024
	maxMessageID   = 64
	maxSender      = 32
	maxEndpoint    = 128
	maxReplyTo     = 64
	timeLen        = 8
	defaultMaxSkew = 5 * time.Minute
)

// Header travels in clear but is authenticated: its encoding is part of the
// AAD, so changing any field makes Open fail with ErrTampered.
//
// Do not put secrets in it. Values may contain arbitrary bytes; quote them
// (%q) when logging.
type Header struct {
	KeyID     string    // set by Seal to the active key id
	MessageID string    // set by Seal if empty: 32 lowercase hex chars from 16 random bytes (<=64 bytes)
	Time      time.Time // set by Seal if zero: time.Now(); encoded as Unix nanoseconds (int64)
	Sender    string    // zone that sealed it, e.g. "internet", "external" (<=32 bytes)
	Endpoint  string    // what it is for, e.g. "POST /v1/apply" or "RESP /v1/apply" (<=128 bytes)
	ReplyTo   string    // for responses: the MessageID of the request answered (<=64 bytes), else empty
	Cipher    Cipher    // set by Seal to the key's cipher; Open refuses an envelope whose cipher is not its key's
}

// OpenOptions tells Open what the envelope must be bound to.
// A nil *OpenOptions means all defaults and no binding checks.
type OpenOptions struct {
	Now      time.Time     // zero => time.Now()
	MaxSkew  time.Duration // |Now - header.Time| must be <= MaxSkew; zero (or negative) => 5 minutes
	Endpoint string        // if non-empty must equal header.Endpoint, else ErrTampered
	Sender   string        // if non-empty must equal header.Sender, else ErrTampered
	ReplyTo  string        // if non-empty must equal header.ReplyTo, else ErrTampered
}

// Seal encrypts plaintext under the active key and returns the envelope
// appended to dst, together with the header as filled in: KeyID and
// Cipher are always set to the active key's, MessageID and Time are filled in if empty/zero,
// and Time is returned as it will be decoded by Open (UTC, nanosecond
// precision, no monotonic reading).
//
// A header that would not make a well-formed envelope (a field over its
// limit, or a Time outside the int64 Unix nanosecond range, roughly years
// 1678 to 2262) is rejected with an error wrapping ErrMalformed; on any
// error dst is returned unchanged. dst must not overlap plaintext.
func (r *Keyring) Seal(dst []byte, h Header, plaintext []byte) ([]byte, Header, error) {
	return r.seal(dst, r.activeID, h, plaintext)
}

// SealWith is Seal under the key id instead of the active key; the id
// must be one the keyring holds, else the error wraps ErrUnknownKey. A
// server answers a request under the key the request came with, so that
// during a rotation a peer that does not hold the new key yet can still
// open the answer (see Key rotation).
func (r *Keyring) SealWith(dst []byte, keyID string, h Header, plaintext []byte) ([]byte, Header, error) {
	if _, ok := r.aeads[keyID]; !ok {
		return dst, Header{}, fmt.Errorf("%w: %q", ErrUnknownKey, keyID)
	}
	return r.seal(dst, keyID, h, plaintext)
}

func (r *Keyring) seal(dst []byte, keyID string, h Header, plaintext []byte) ([]byte, Header, error) {
	h.KeyID = keyID
	h.Cipher = r.aeads[keyID].cipher
	if h.MessageID == "" {
		id, err := newMessageID()
		if err != nil {
			return dst, Header{}, err
		}
		h.MessageID = id
	}
	if h.Time.IsZero() {
		h.Time = time.Now()
	}
	if h.Time.Before(minTime) || h.Time.After(maxTime) {
		return dst, Header{}, fmt.Errorf("%w: time %v is outside the int64 Unix nanosecond range", ErrMalformed, h.Time)
	}
	h.Time = time.Unix(0, h.Time.UnixNano()).UTC()
	if err := checkLimits(&h); err != nil {
		return dst, Header{}, err
	}

	// Counted only once the header is known to be good: every count is
	// one nonce drawn under the key.
	if err := r.count(keyID); err != nil {
		return dst, Header{}, err
	}
	hlen := encodedHeaderLen(&h)
	total := prefixLen + 1 + uvarintLen(uint64(hlen)) + hlen + nonceSize + len(plaintext) + tagSize
	out := slices.Grow(dst, total)
	start := len(out)
	if h.Cipher == AES256GCM {
		out = append(out, 'G', 'S', 'E', version1)
	} else {
		out = append(out, 'G', 'S', 'E', version2, byte(h.Cipher))
	}
	out = binary.AppendUvarint(out, uint64(hlen))
	out = appendHeader(out, &h)
	aadEnd := len(out)
	out = out[:aadEnd+nonceSize]
	nonce := out[aadEnd:]
	if _, err := rand.Read(nonce); err != nil {
		return dst, Header{}, fmt.Errorf("gapsync/crypto: read nonce: %w", err)
	}
	out = r.aeads[keyID].Seal(out, nonce, plaintext, out[start:aadEnd])
	return out, h, nil
}

// Open authenticates and decrypts envelope and returns its header and the
// plaintext appended to dst (which may be nil and must not overlap
// envelope). o may be nil.
//
// Checks happen in this order, and the first failure is returned:
// parse (ErrMalformed), key lookup (ErrUnknownKey), the envelope's cipher
// against the key's (ErrTampered), AEAD open (ErrTampered),
// Endpoint/Sender/ReplyTo match (ErrTampered, the message says which field),
// timestamp skew (ErrStale). On any error the returned Header is zero, the
// plaintext is nil, and any plaintext already written into dst's spare
// capacity is zeroed. Error messages never contain key material or
// plaintext.
func (r *Keyring) Open(dst, envelope []byte, o *OpenOptions) (Header, []byte, error) {
	h, aadLen, err := parse(envelope)
	if err != nil {
		return Header{}, nil, err
	}
	aead, ok := r.aeads[h.KeyID]
	if !ok {
		return Header{}, nil, fmt.Errorf("%w: %q", ErrUnknownKey, h.KeyID)
	}
	if h.Cipher != aead.cipher {
		return Header{}, nil, fmt.Errorf("%w: envelope is %v but key %q is %v: the zones hold different keys under one id, or the envelope was modified",
			ErrTampered, h.Cipher, h.KeyID, aead.cipher)
	}
	nonce := envelope[aadLen : aadLen+nonceSize]
	out, err := aead.Open(dst, nonce, envelope[aadLen+nonceSize:], envelope[:aadLen])
	if err != nil {
		return Header{}, nil, fmt.Errorf("%w: wrong secret for key %q or envelope modified", ErrTampered, h.KeyID)
	}
	if err := check(&h, o); err != nil {
		clear(out[len(dst):])
		return Header{}, nil, err
	}
	return h, out, nil
}

// check applies the binding and skew checks of o to an authenticated header.
func check(h *Header, o *OpenOptions) error {
	var opts OpenOptions
	if o != nil {
		opts = *o
	}
	if opts.Endpoint != "" && h.Endpoint != opts.Endpoint {
		return fmt.Errorf("%w: endpoint is %q, want %q", ErrTampered, h.Endpoint, opts.Endpoint)
	}
	if opts.Sender != "" && h.Sender != opts.Sender {
		return fmt.Errorf("%w: sender is %q, want %q", ErrTampered, h.Sender, opts.Sender)
	}
	if opts.ReplyTo != "" && h.ReplyTo != opts.ReplyTo {
		return fmt.Errorf("%w: reply-to is %q, want %q", ErrTampered, h.ReplyTo, opts.ReplyTo)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	skew := opts.MaxSkew
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	// Sub saturates instead of overflowing, so no abs() is needed.
	switch d := now.Sub(h.Time); {
	case d > skew:
		return fmt.Errorf("%w: sealed %v ago, limit %v", ErrStale, d, skew)
	case d < -skew:
		return fmt.Errorf("%w: sealed %v in the future, limit %v", ErrStale, -d, skew)
	}
	return nil
}

// PeekHeader parses the header of envelope without authenticating it, for
// logging and routing (for example to see which key id a peer used).
// Nothing in the result may be trusted: anyone can forge it. Errors wrap
// ErrMalformed.
func PeekHeader(envelope []byte) (Header, error) {
	h, _, err := parse(envelope)
	return h, err
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func newMessageID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("gapsync/crypto: read message id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func checkLimits(h *Header) error {
	switch {
	case !validKeyID(h.KeyID):
		return fmt.Errorf("%w: invalid key id", ErrMalformed)
	case h.MessageID == "":
		return fmt.Errorf("%w: empty message id", ErrMalformed)
	case len(h.MessageID) > maxMessageID:
		return fmt.Errorf("%w: message id is %d bytes, limit %d", ErrMalformed, len(h.MessageID), maxMessageID)
	case len(h.Sender) > maxSender:
		return fmt.Errorf("%w: sender is %d bytes, limit %d", ErrMalformed, len(h.Sender), maxSender)
	case len(h.Endpoint) > maxEndpoint:
		return fmt.Errorf("%w: endpoint is %d bytes, limit %d", ErrMalformed, len(h.Endpoint), maxEndpoint)
	case len(h.ReplyTo) > maxReplyTo:
		return fmt.Errorf("%w: reply-to is %d bytes, limit %d", ErrMalformed, len(h.ReplyTo), maxReplyTo)
	}
	return nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func encodedHeaderLen(h *Header) int {
	n := timeLen
	for _, s := range [...]string{h.KeyID, h.MessageID, h.Sender, h.Endpoint, h.ReplyTo} {
		n += uvarintLen(uint64(len(s))) + len(s)
	}
	return n
}

func appendHeader(b []byte, h *Header) []byte {
	for _, s := range [...]string{h.KeyID, h.MessageID, h.Sender, h.Endpoint, h.ReplyTo} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return binary.BigEndian.AppendUint64(b, uint64(h.Time.UnixNano()))
}

// readUvarint reads a minimally encoded uvarint from b.
func readUvarint(b []byte) (uint64, int, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 || (n > 1 && b[n-1] == 0) {
		return 0, 0, false
	}
	return v, n, true
}

// parse decodes the clear part of an envelope. It returns the header and
// the length of the AAD (everything before the nonce). It checks that the
// rest of the envelope is long enough for a nonce and a tag.
func parse(env []byte) (Header, int, error) {
	if len(env) < prefixLen || env[0] != 'G' || env[1] != 'S' || env[2] != 'E' {
		return Header{}, 0, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	c, plen := AES256GCM, prefixLen
	switch env[3] {
	case version1:
	case version2:
		if len(env) <= prefixLen {
			return Header{}, 0, fmt.Errorf("%w: truncated", ErrMalformed)
		}
		c, plen = Cipher(env[prefixLen]), prefixLen+1
		switch {
		case c == AES256GCM:
			return Header{}, 0, fmt.Errorf("%w: version 2 envelope names %v, which is sealed as version 1", ErrMalformed, c)
		case !c.known():
			return Header{}, 0, fmt.Errorf("%w: unknown %v", ErrMalformed, c)
		}
	default:
		return Header{}, 0, fmt.Errorf("%w: unsupported version %d", ErrMalformed, env[3])
	}
	hlen, n, ok := readUvarint(env[plen:])
	if !ok {
		return Header{}, 0, fmt.Errorf("%w: bad header length", ErrMalformed)
	}
	if hlen > maxHeaderLen {
		return Header{}, 0, fmt.Errorf("%w: header length %d exceeds %d", ErrMalformed, hlen, maxHeaderLen)
	}
	hstart := plen + n
	aadLen := hstart + int(hlen)
	if len(env)-hstart < int(hlen)+nonceSize+tagSize {
		return Header{}, 0, fmt.Errorf("%w: truncated", ErrMalformed)
	}

	b := env[hstart:aadLen]
	var fields [5]string
	limits := [5]int{maxKeyIDLen, maxMessageID, maxSender, maxEndpoint, maxReplyTo}
	names := [5]string{"key id", "message id", "sender", "endpoint", "reply-to"}
	for i := range fields {
		l, n, ok := readUvarint(b)
		if !ok {
			return Header{}, 0, fmt.Errorf("%w: bad %s length", ErrMalformed, names[i])
		}
		if l > uint64(limits[i]) {
			return Header{}, 0, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrMalformed, names[i], l, limits[i])
		}
		b = b[n:]
		if uint64(len(b)) < l {
			return Header{}, 0, fmt.Errorf("%w: header truncated in %s", ErrMalformed, names[i])
		}
		fields[i] = string(b[:l])
		b = b[l:]
	}
	if len(b) != timeLen {
		return Header{}, 0, fmt.Errorf("%w: header has %d bytes after the strings, want %d", ErrMalformed, len(b), timeLen)
	}
	h := Header{
		KeyID:     fields[0],
		MessageID: fields[1],
		Sender:    fields[2],
		Endpoint:  fields[3],
		ReplyTo:   fields[4],
		Cipher:    c,
		Time:      time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC(),
	}
	if err := checkLimits(&h); err != nil {
		return Header{}, 0, err
	}
	return h, aadLen, nil
}
