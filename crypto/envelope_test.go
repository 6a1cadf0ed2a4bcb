package crypto_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm4"
	"github.com/gapsync/gapsync/crypto"
	"github.com/matryer/is"
)

var sentinels = []error{
	crypto.ErrMalformed,
	crypto.ErrUnknownKey,
	crypto.ErrTampered,
	crypto.ErrStale,
	crypto.ErrReplayed,
}

// sentinelOf returns the single sentinel err wraps, failing the test if err
// wraps none or more than one.
func sentinelOf(t *testing.T, err error) error {
	t.Helper()
	var found []error
	for _, s := range sentinels {
		if errors.Is(err, s) {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("error %q wraps %d sentinels, want exactly 1", err, len(found))
	}
	return found[0]
}

func mustKey(t testing.TB, id string) crypto.Key {
	t.Helper()
	k, err := crypto.GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func cipherKey(t testing.TB, c crypto.Cipher, id string) crypto.Key {
	t.Helper()
	k, err := crypto.GenerateCipherKey(c, id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// eachCipher runs the test f once under every cipher, as a subtest named
// after it: the envelope must refuse under SM4-GCM all that it refuses
// under AES-256-GCM.
func eachCipher(t *testing.T, f func(t *testing.T, c crypto.Cipher)) {
	for _, c := range crypto.Ciphers {
		t.Run(c.String(), func(t *testing.T) { f(t, c) })
	}
}

// prefixLen is the documented length of magic, version and (from
// version 2) cipher.
func prefixLen(c crypto.Cipher) int {
	if c == crypto.AES256GCM {
		return 4
	}
	return 5
}

func mustRing(t testing.TB, active crypto.Key, older ...crypto.Key) *crypto.Keyring {
	t.Helper()
	r, err := crypto.NewKeyring(active, older...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func seal(t testing.TB, r *crypto.Keyring, h crypto.Header, pt []byte) ([]byte, crypto.Header) {
	t.Helper()
	env, h, err := r.Seal(nil, h, pt)
	if err != nil {
		t.Fatal(err)
	}
	return env, h
}

func TestRoundTrip(t *testing.T) { eachCipher(t, testRoundTrip) }

func testRoundTrip(t *testing.T, c crypto.Cipher) {
	is := is.New(t)
	r := mustRing(t, cipherKey(t, c, "k1"))
	for _, pt := range [][]byte{nil, []byte("x"), []byte("hello, intranet"), bytes.Repeat([]byte{0xAB}, 100000)} {
		in := crypto.Header{Sender: "internet", Endpoint: "POST /v1/apply"}
		prefix := []byte("prefix")
		env, sealed, err := r.Seal(append([]byte(nil), prefix...), in, pt)
		is.NoErr(err)
		is.True(bytes.HasPrefix(env, prefix)) // Seal appends to dst
		env = env[len(prefix):]

		outPrefix := []byte("out:")
		h, got, err := r.Open(append([]byte(nil), outPrefix...), env, &crypto.OpenOptions{
			Endpoint: "POST /v1/apply",
			Sender:   "internet",
		})
		is.NoErr(err)
		is.True(bytes.HasPrefix(got, outPrefix)) // Open appends to dst
		is.Equal(got[len(outPrefix):], append([]byte{}, pt...))
		is.Equal(h, sealed) // Open returns exactly the header Seal reported

		peek, err := crypto.PeekHeader(env)
		is.NoErr(err)
		is.Equal(peek, sealed)
		is.True(!bytes.Contains(env, []byte("hello, intranet"))) // plaintext is not in clear
	}
}

func TestOpenNilOptionsAndNilDst(t *testing.T) { eachCipher(t, testOpenNilOptionsAndNilDst) }

func testOpenNilOptionsAndNilDst(t *testing.T, c crypto.Cipher) {
	is := is.New(t)
	r := mustRing(t, cipherKey(t, c, "k1"))
	env, _ := seal(t, r, crypto.Header{}, []byte("body"))
	_, got, err := r.Open(nil, env, nil)
	is.NoErr(err)
	is.Equal(string(got), "body")
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestSealFillsHeader(t *testing.T) { eachCipher(t, testSealFillsHeader) }

func testSealFillsHeader(t *testing.T, c crypto.Cipher) {
	is := is.New(t)
	r := mustRing(t, cipherKey(t, c, "active-1"), cipherKey(t, c, "old"))

	before := time.Now()
	env, h := seal(t, r, crypto.Header{KeyID: "old", Sender: "internet"}, []byte("x"))
	after := time.Now()
	is.Equal(h.KeyID, "active-1") // KeyID is always the active key
	is.True(hex32.MatchString(h.MessageID))
	is.True(!h.Time.Before(before.Truncate(time.Nanosecond)) && !h.Time.After(after))
	is.Equal(h.Time.Location(), time.UTC)
	peek, err := crypto.PeekHeader(env)
	is.NoErr(err)
	is.Equal(peek.KeyID, "active-1")

	// Caller-supplied MessageID and Time are kept.
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	env, h = seal(t, r, crypto.Header{MessageID: "req-42", Time: at, ReplyTo: "abc"}, []byte("x"))
	is.Equal(h.MessageID, "req-42")
	is.True(h.Time.Equal(at))
	is.Equal(h.ReplyTo, "abc")
	got, _, err := r.Open(nil, env, &crypto.OpenOptions{Now: at})
	is.NoErr(err)
	is.Equal(got, h)
}

func TestMessageIDsAndNoncesDiffer(t *testing.T) { eachCipher(t, testMessageIDsAndNoncesDiffer) }

func testMessageIDsAndNoncesDiffer(t *testing.T, c crypto.Cipher) {
	is := is.New(t)
	r := mustRing(t, cipherKey(t, c, "k1"))
	_, h1 := seal(t, r, crypto.Header{}, []byte("x"))
	_, h2 := seal(t, r, crypto.Header{}, []byte("x"))
	is.True(h1.MessageID != h2.MessageID)

	// Same header and plaintext: the random nonce must still make the
	// envelopes differ.
	fixed := crypto.Header{MessageID: "m", Time: time.Unix(1700000000, 0)}
	e1, _ := seal(t, r, fixed, []byte("same"))
	e2, _ := seal(t, r, fixed, []byte("same"))
	is.True(!bytes.Equal(e1, e2))
	n := len(e1) - len("same") - 16 - 12
	is.True(bytes.Equal(e1[:n], e2[:n]))          // AAD identical
	is.True(!bytes.Equal(e1[n:n+12], e2[n:n+12])) // nonce differs
}

func TestEveryByteFlipFails(t *testing.T) { eachCipher(t, testEveryByteFlipFails) }

func testEveryByteFlipFails(t *testing.T, c crypto.Cipher) {
	r := mustRing(t, cipherKey(t, c, "k1"))
	pt := []byte("small body")
	const endpoint = "POST /v1/apply"
	env, h := seal(t, r, crypto.Header{Sender: "internet", Endpoint: endpoint, ReplyTo: "rq"}, pt)
	now := h.Time

	nonceStart := len(env) - len(pt) - 16 - 12
	timeStart := nonceStart - 8
	epStart := bytes.Index(env, []byte(endpoint))
	if epStart < 0 {
		t.Fatal("endpoint not found in clear")
	}
	for i := range env {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(env)
			bad[i] ^= mask
			// No binding options: any failure must come from the envelope
			// itself (parse, key lookup or GCM), not from OpenOptions.
			_, got, err := r.Open(nil, bad, &crypto.OpenOptions{Now: now})
			if err == nil {
				t.Fatalf("byte %d ^ %#x: Open succeeded", i, mask)
			}
			if got != nil {
				t.Fatalf("byte %d ^ %#x: plaintext returned with error", i, mask)
			}
			s := sentinelOf(t, err)
			var want []error
			switch {
			case i < prefixLen(c): // magic, version and cipher
				want = []error{crypto.ErrMalformed}
			case i >= timeStart: // time, nonce, ciphertext, tag
				want = []error{crypto.ErrTampered}
			case i >= epStart && i < epStart+len(endpoint): // header content
				want = []error{crypto.ErrTampered}
			default: // lengths, key id
				want = []error{crypto.ErrMalformed, crypto.ErrUnknownKey, crypto.ErrTampered}
			}
			ok := false
			for _, w := range want {
				ok = ok || s == w
			}
			if !ok {
				t.Fatalf("byte %d ^ %#x: got %v, want one of %v", i, mask, err, want)
			}
		}
	}
}

func TestTruncatedOrExtendedFails(t *testing.T) { eachCipher(t, testTruncatedOrExtendedFails) }

func testTruncatedOrExtendedFails(t *testing.T, c crypto.Cipher) {
	is := is.New(t)
	r := mustRing(t, cipherKey(t, c, "k1"))
	env, h := seal(t, r, crypto.Header{Endpoint: "e"}, []byte("body"))
	o := &crypto.OpenOptions{Now: h.Time}
	for n := 0; n < len(env); n++ {
		_, _, err := r.Open(nil, env[:n], o)
		s := sentinelOf(t, err)
		is.True(s == crypto.ErrMalformed || s == crypto.ErrTampered)
	}
	_, _, err := r.Open(nil, append(bytes.Clone(env), 0), o)
	is.True(errors.Is(err, crypto.ErrTampered))
}

// TestKeyRotation rotates within each cipher and from each to the other:
// the three steps are the same, and both keys open during the overlap.
func TestKeyRotation(t *testing.T) {
	for _, from := range crypto.Ciphers {
		for _, to := range crypto.Ciphers {
			t.Run(from.String()+"->"+to.String(), func(t *testing.T) { testKeyRotation(t, from, to) })
		}
	}
}

func testKeyRotation(t *testing.T, from, to crypto.Cipher) {
	is := is.New(t)
	oldK, newK := cipherKey(t, from, "2025-01"), cipherKey(t, to, "2025-06")

	before := mustRing(t, oldK)      // before rotation
	step1 := mustRing(t, oldK, newK) // new key known, not active
	after := mustRing(t, newK, oldK) // new key active, old still opens
	retired := mustRing(t, newK)     // old key dropped
	o := &crypto.OpenOptions{Endpoint: "POST /v1/apply"}
	h := crypto.Header{Endpoint: "POST /v1/apply"}

	oldEnv, _ := seal(t, before, h, []byte("sealed with old"))
	_, pt, err := after.Open(nil, oldEnv, o)
	is.NoErr(err)
	is.Equal(string(pt), "sealed with old")

	is.Equal(after.ActiveID(), "2025-06")
	is.Equal(after.ActiveCipher(), to)
	newEnv, sh := seal(t, after, h, []byte("sealed with new"))
	is.Equal(sh.KeyID, "2025-06")
	is.Equal(sh.Cipher, to)
	_, pt, err = after.Open(nil, newEnv, o)
	is.NoErr(err)
	is.Equal(string(pt), "sealed with new")
	_, pt, err = step1.Open(nil, oldEnv, o) // step 1 still seals and opens the old
	is.NoErr(err)
	is.Equal(string(pt), "sealed with old")
	_, pt, err = step1.Open(nil, newEnv, o) // why step 1 exists
	is.NoErr(err)
	is.Equal(string(pt), "sealed with new")

	_, _, err = retired.Open(nil, oldEnv, o)
	is.True(errors.Is(err, crypto.ErrUnknownKey))
	is.True(strings.Contains(err.Error(), `"2025-01"`))
	_, _, err = before.Open(nil, newEnv, o)
	is.True(errors.Is(err, crypto.ErrUnknownKey))
	sentinelOf(t, err)
}

func TestWrongSecretSameID(t *testing.T) { eachCipher(t, testWrongSecretSameID) }

func testWrongSecretSameID(t *testing.T, c crypto.Cipher) {
	is := is.New(t)
	a := mustRing(t, cipherKey(t, c, "k1"))
	b := mustRing(t, cipherKey(t, c, "k1"))
	env, _ := seal(t, a, crypto.Header{}, []byte("secret stuff"))
	_, pt, err := b.Open(nil, env, nil)
	is.True(errors.Is(err, crypto.ErrTampered))
	is.Equal(sentinelOf(t, err), crypto.ErrTampered)
	is.True(pt == nil)
	is.True(!strings.Contains(err.Error(), "secret stuff"))
}

func TestStale(t *testing.T) { eachCipher(t, testStale) }

func testStale(t *testing.T, c crypto.Cipher) {
	is := is.New(t)
	r := mustRing(t, cipherKey(t, c, "k1"))
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	env, _ := seal(t, r, crypto.Header{Time: t0}, []byte("x"))

	open := func(now time.Time, skew time.Duration) error {
		_, _, err := r.Open(nil, env, &crypto.OpenOptions{Now: now, MaxSkew: skew})
		return err
	}
	const skew = 30 * time.Second
	is.NoErr(open(t0, skew))
	is.NoErr(open(t0.Add(skew), skew))  // boundary: exactly MaxSkew late is allowed
	is.NoErr(open(t0.Add(-skew), skew)) // and exactly MaxSkew early
	err := open(t0.Add(skew+time.Nanosecond), skew)
	is.Equal(sentinelOf(t, err), crypto.ErrStale) // too old
	err = open(t0.Add(-skew-time.Nanosecond), skew)
	is.Equal(sentinelOf(t, err), crypto.ErrStale) // too far in the future

	// Zero MaxSkew means 5 minutes.
	is.NoErr(open(t0.Add(5*time.Minute), 0))
	is.NoErr(open(t0.Add(-5*time.Minute), 0))
	is.True(errors.Is(open(t0.Add(5*time.Minute+1), 0), crypto.ErrStale))
	is.True(errors.Is(open(t0.Add(-5*time.Minute-1), 0), crypto.ErrStale))

	// Zero Now means time.Now(): t0 is far from now in either direction.
	old, _ := seal(t, r, crypto.Header{Time: time.Now().Add(-time.Hour)}, []byte("x"))
	_, _, err = r.Open(nil, old, &crypto.OpenOptions{})
	is.True(errors.Is(err, crypto.ErrStale))
	future, _ := seal(t, r, crypto.Header{Time: time.Now().Add(time.Hour)}, []byte("x"))
	_, _, err = r.Open(nil, future, nil)
	is.True(errors.Is(err, crypto.ErrStale))

	// Extreme times saturate instead of overflowing.
	far, _ := seal(t, r, crypto.Header{Time: time.Unix(0, -1<<63)}, []byte("x"))
	_, _, err = r.Open(nil, far, &crypto.OpenOptions{Now: time.Unix(0, 1<<63-1)})
	is.True(errors.Is(err, crypto.ErrStale))
}

func TestBindingMismatch(t *testing.T) { eachCipher(t, testBindingMismatch) }

func testBindingMismatch(t *testing.T, c crypto.Cipher) {
	r := mustRing(t, cipherKey(t, c, "k1"))
	h := crypto.Header{Sender: "internet", Endpoint: "RESP /v1/apply", ReplyTo: "0123"}
	env, sealed := seal(t, r, h, []byte("response body"))
	base := crypto.OpenOptions{Now: sealed.Time, Sender: "internet", Endpoint: "RESP /v1/apply", ReplyTo: "0123"}

	for _, tc := range []struct {
		name  string
		edit  func(*crypto.OpenOptions)
		field string
	}{
		{"endpoint", func(o *crypto.OpenOptions) { o.Endpoint = "POST /v1/apply" }, "endpoint"},
		{"sender", func(o *crypto.OpenOptions) { o.Sender = "intranet" }, "sender"},
		{"reply-to", func(o *crypto.OpenOptions) { o.ReplyTo = "4567" }, "reply-to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			o := base
			_, _, err := r.Open(nil, env, &o)
			is.NoErr(err) // all bindings match

			tc.edit(&o)
			dst := make([]byte, 0, 256)
			h, pt, err := r.Open(dst, env, &o)
			is.Equal(sentinelOf(t, err), crypto.ErrTampered)
			is.True(strings.Contains(err.Error(), tc.field))
			is.True(!strings.Contains(err.Error(), "response body"))
			is.Equal(h, crypto.Header{})
			is.True(pt == nil)
			// Plaintext decrypted into dst's spare capacity was wiped.
			is.True(!bytes.Contains(dst[:cap(dst)], []byte("response body")))
		})
	}

	// A request header does not satisfy a receiver expecting a reply.
	is := is.New(t)
	req, rh := seal(t, r, crypto.Header{Sender: "internet", Endpoint: "RESP /v1/apply"}, []byte("x"))
	_, _, err := r.Open(nil, req, &crypto.OpenOptions{Now: rh.Time, ReplyTo: "0123"})
	is.True(errors.Is(err, crypto.ErrTampered))

	// Binding is checked before skew.
	_, _, err = r.Open(nil, env, &crypto.OpenOptions{Now: sealed.Time.Add(time.Hour), Endpoint: "x"})
	is.Equal(sentinelOf(t, err), crypto.ErrTampered)
}

func TestSealHeaderLimits(t *testing.T) { eachCipher(t, testSealHeaderLimits) }

func testSealHeaderLimits(t *testing.T, c crypto.Cipher) {
	r := mustRing(t, cipherKey(t, c, "k1"))
	for _, tc := range []struct {
		name  string
		limit int
		set   func(*crypto.Header, string)
	}{
		{"message id", 64, func(h *crypto.Header, s string) { h.MessageID = s }},
		{"sender", 32, func(h *crypto.Header, s string) { h.Sender = s }},
		{"endpoint", 128, func(h *crypto.Header, s string) { h.Endpoint = s }},
		{"reply-to", 64, func(h *crypto.Header, s string) { h.ReplyTo = s }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			var h crypto.Header
			tc.set(&h, strings.Repeat("a", tc.limit))
			env, sh, err := r.Seal(nil, h, []byte("x"))
			is.NoErr(err) // at the limit
			_, _, err = r.Open(nil, env, &crypto.OpenOptions{Now: sh.Time})
			is.NoErr(err)

			tc.set(&h, strings.Repeat("a", tc.limit+1))
			dst := []byte("keep")
			out, _, err := r.Seal(dst, h, []byte("x"))
			is.True(errors.Is(err, crypto.ErrMalformed))
			is.True(strings.Contains(err.Error(), tc.name))
			is.Equal(out, dst)
		})
	}

	is := is.New(t)
	_, _, err := r.Seal(nil, crypto.Header{Time: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}, nil)
	is.True(errors.Is(err, crypto.ErrMalformed))
	_, _, err = r.Seal(nil, crypto.Header{Time: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)}, nil)
	is.True(errors.Is(err, crypto.ErrMalformed))
}

// rawEnvelope builds an envelope by hand, following the layout in doc.go
// independently of the package's encoder. Fields are KeyID, MessageID,
// Sender, Endpoint, ReplyTo; extra is appended to the header after Time.
type rawEnvelope struct {
	magic     []byte // default "GSE\x01" (AES-256-GCM) or "GSE\x02\x01" (SM4-GCM)
	hlenBytes []byte // default minimal uvarint of len(header)
	fields    [5][]byte
	lenBytes  [5][]byte // per-field length override
	nanos     int64
	extra     []byte
}

func (e rawEnvelope) build(t *testing.T, k crypto.Key, pt []byte) []byte {
	t.Helper()
	var hdr []byte
	for i, f := range e.fields {
		if e.lenBytes[i] != nil {
			hdr = append(hdr, e.lenBytes[i]...)
		} else {
			hdr = binary.AppendUvarint(hdr, uint64(len(f)))
		}
		hdr = append(hdr, f...)
	}
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(e.nanos))
	hdr = append(hdr, e.extra...)

	env := []byte("GSE\x01")
	if k.Cipher == crypto.SM4GCM {
		env = []byte("GSE\x02\x01")
	}
	if e.magic != nil {
		env = bytes.Clone(e.magic)
	}
	if e.hlenBytes != nil {
		env = append(env, e.hlenBytes...)
	} else {
		env = binary.AppendUvarint(env, uint64(len(hdr)))
	}
	env = append(env, hdr...)
	aad := bytes.Clone(env)
	nonce := bytes.Repeat([]byte{7}, 12)
	env = append(env, nonce...)
	return gcmOf(t, k).Seal(env, nonce, pt, aad)
}

// gcmOf makes the key's AEAD from the cipher libraries directly, not
// through the package.
func gcmOf(t *testing.T, k crypto.Key) cipher.AEAD {
	t.Helper()
	newBlock := aes.NewCipher
	if k.Cipher == crypto.SM4GCM {
		newBlock = sm4.NewCipher
	}
	block, err := newBlock(k.Secret)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return gcm
}

func validRaw(now time.Time) rawEnvelope {
	return rawEnvelope{
		fields: [5][]byte{[]byte("k1"), []byte("mid"), []byte("internet"), []byte("POST /v1/apply"), nil},
		nanos:  now.UnixNano(),
	}
}

// TestLayoutMatchesDoc opens a hand-built envelope, so the documented
// layout and the implementation cannot drift apart silently.
func TestLayoutMatchesDoc(t *testing.T) { eachCipher(t, testLayoutMatchesDoc) }

func testLayoutMatchesDoc(t *testing.T, c crypto.Cipher) {
	is := is.New(t)
	k := cipherKey(t, c, "k1")
	r := mustRing(t, k)
	now := time.Unix(1750000000, 123456789)
	env := validRaw(now).build(t, k, []byte("hand made"))
	h, pt, err := r.Open(nil, env, &crypto.OpenOptions{Now: now, Endpoint: "POST /v1/apply", Sender: "internet"})
	is.NoErr(err)
	is.Equal(string(pt), "hand made")
	is.Equal(h, crypto.Header{KeyID: "k1", MessageID: "mid", Sender: "internet", Endpoint: "POST /v1/apply", Time: now.UTC(), Cipher: c})

	// And the package's own envelope has the documented shape.
	sealed, sh := seal(t, r, crypto.Header{MessageID: "mid", Sender: "internet", Endpoint: "POST /v1/apply", Time: now}, []byte("hand made"))
	is.Equal(sh.Time, now.UTC())
	is.Equal(len(sealed), len(env))
	nonceAt := len(env) - len("hand made") - 16 - 12
	is.Equal(sealed[:nonceAt], env[:nonceAt]) // identical AAD bytes
}

func TestParseLimits(t *testing.T) { eachCipher(t, testParseLimits) }

func testParseLimits(t *testing.T, c crypto.Cipher) {
	k := cipherKey(t, c, "k1")
	r := mustRing(t, k)
	now := time.Unix(1750000000, 0)
	long := func(n int) []byte { return bytes.Repeat([]byte{'a'}, n) }

	ok := func(edit func(*rawEnvelope)) rawEnvelope {
		e := validRaw(now)
		edit(&e)
		return e
	}
	// Envelopes that are exactly at the limits open.
	for name, e := range map[string]rawEnvelope{
		"key id 32":     ok(func(e *rawEnvelope) { e.fields[0] = long(32) }),
		"message id 64": ok(func(e *rawEnvelope) { e.fields[1] = long(64) }),
		"sender 32":     ok(func(e *rawEnvelope) { e.fields[2] = long(32) }),
		"endpoint 128":  ok(func(e *rawEnvelope) { e.fields[3] = long(128) }),
		"reply-to 64":   ok(func(e *rawEnvelope) { e.fields[4] = long(64) }),
	} {
		t.Run("accept "+name, func(t *testing.T) {
			is := is.New(t)
			_, err := crypto.PeekHeader(e.build(t, k, nil))
			is.NoErr(err)
		})
	}

	// These are all sealed with the right secret, so only the parser can
	// reject them.
	for name, e := range map[string]rawEnvelope{
		"key id 33":           ok(func(e *rawEnvelope) { e.fields[0] = long(33) }),
		"key id empty":        ok(func(e *rawEnvelope) { e.fields[0] = nil }),
		"key id bad char":     ok(func(e *rawEnvelope) { e.fields[0] = []byte("k/1") }),
		"message id 65":       ok(func(e *rawEnvelope) { e.fields[1] = long(65) }),
		"message id empty":    ok(func(e *rawEnvelope) { e.fields[1] = nil }),
		"sender 33":           ok(func(e *rawEnvelope) { e.fields[2] = long(33) }),
		"endpoint 129":        ok(func(e *rawEnvelope) { e.fields[3] = long(129) }),
		"reply-to 65":         ok(func(e *rawEnvelope) { e.fields[4] = long(65) }),
		"trailing header":     ok(func(e *rawEnvelope) { e.extra = []byte{0} }),
		"header over 1024":    ok(func(e *rawEnvelope) { e.extra = long(1100) }),
		"non-minimal hlen":    ok(func(e *rawEnvelope) { e.hlenBytes = []byte{0x80 | 37, 0} }),
		"non-minimal length":  ok(func(e *rawEnvelope) { e.lenBytes[0] = []byte{0x82, 0x00} }),
		"field past header":   ok(func(e *rawEnvelope) { e.lenBytes[4] = []byte{20} }),
		"bad magic":           ok(func(e *rawEnvelope) { e.magic = []byte("GSX\x01") }),
		"version 3":           ok(func(e *rawEnvelope) { e.magic = []byte("GSE\x03") }),
		"v2 naming aes":       ok(func(e *rawEnvelope) { e.magic = []byte("GSE\x02\x00") }),
		"v2 unknown cipher":   ok(func(e *rawEnvelope) { e.magic = []byte("GSE\x02\x07") }),
		"v2 without cipher":   ok(func(e *rawEnvelope) { e.magic = []byte("GSE\x02") }),
		"hlen past envelope":  ok(func(e *rawEnvelope) { e.hlenBytes = []byte{0x80, 0x08} }),
		"hlen varint overrun": ok(func(e *rawEnvelope) { e.hlenBytes = bytes.Repeat([]byte{0xff}, 11) }),
	} {
		t.Run("reject "+name, func(t *testing.T) {
			is := is.New(t)
			env := e.build(t, k, []byte("x"))
			_, err := crypto.PeekHeader(env)
			is.Equal(sentinelOf(t, err), crypto.ErrMalformed)
			_, _, err = r.Open(nil, env, &crypto.OpenOptions{Now: now})
			is.Equal(sentinelOf(t, err), crypto.ErrMalformed)
		})
	}

	is := is.New(t)
	// headerLen over the limit is rejected as such, before the header is
	// looked at.
	big := validRaw(now)
	big.extra = long(1100)
	_, err := crypto.PeekHeader(big.build(t, k, nil))
	is.True(errors.Is(err, crypto.ErrMalformed))
	is.True(strings.Contains(err.Error(), "exceeds 1024"))

	// Ciphertext shorter than a tag.
	env := validRaw(now).build(t, k, nil)
	_, err = crypto.PeekHeader(env[:len(env)-1])
	is.True(errors.Is(err, crypto.ErrMalformed))
	_, err = crypto.PeekHeader(nil)
	is.True(errors.Is(err, crypto.ErrMalformed))
}

func TestKeyringIgnoresLaterSecretChanges(t *testing.T) {
	eachCipher(t, testKeyringIgnoresLaterSecretChanges)
}

func testKeyringIgnoresLaterSecretChanges(t *testing.T, c crypto.Cipher) {
	is := is.New(t)
	k := cipherKey(t, c, "k1")
	orig := bytes.Clone(k.Secret)
	r := mustRing(t, k)
	env, _ := seal(t, r, crypto.Header{}, []byte("x"))
	clear(k.Secret)
	_, _, err := mustRing(t, crypto.Key{ID: "k1", Secret: orig, Cipher: c}).Open(nil, env, nil)
	is.NoErr(err) // r still sealed with the original secret
}

func TestConcurrentUse(t *testing.T) { eachCipher(t, testConcurrentUse) }

func testConcurrentUse(t *testing.T, c crypto.Cipher) {
	r := mustRing(t, cipherKey(t, c, "k2"), cipherKey(t, c, "k1"))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				pt := []byte(strings.Repeat("p", g*10+i))
				env, h, err := r.Seal(nil, crypto.Header{Endpoint: "POST /v1/apply"}, pt)
				if err != nil {
					t.Error(err)
					return
				}
				got, out, err := r.Open(nil, env, &crypto.OpenOptions{Endpoint: "POST /v1/apply"})
				if err != nil || got != h || !bytes.Equal(out, pt) {
					t.Errorf("concurrent open: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}
