package crypto_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/gapsync/gapsync/crypto"
	"github.com/matryer/is"
)

func b64(n int, fill byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, n))
}

func TestKeyStringHidesSecret(t *testing.T) {
	is := is.New(t)
	k := mustKey(t, "k1")
	secret := base64.StdEncoding.EncodeToString(k.Secret)
	for _, s := range []string{k.String(), fmt.Sprint(k), fmt.Sprintf("%v %s %#v %+v", k, k, k, k)} {
		is.True(!strings.Contains(s, secret)) // a logged key must not show its secret
		is.True(strings.Contains(s, "k1"))
	}
}

func TestKeyEncodeParseKeyRoundTrip(t *testing.T) { eachCipher(t, testKeyEncodeParseKeyRoundTrip) }

func testKeyEncodeParseKeyRoundTrip(t *testing.T, c crypto.Cipher) {
	is := is.New(t)
	k := cipherKey(t, c, "zone.A_1-x")
	is.Equal(len(k.Secret), map[crypto.Cipher]int{crypto.AES256GCM: 32, crypto.SM4GCM: 16}[c])
	s := k.Encode()
	form := map[crypto.Cipher]string{crypto.AES256GCM: "zone.A_1-x:", crypto.SM4GCM: "zone.A_1-x:sm4:"}[c]
	is.Equal(s, form+base64.StdEncoding.EncodeToString(k.Secret))
	back, err := crypto.ParseKey(s)
	is.NoErr(err)
	is.Equal(back, k)
	back, err = crypto.ParseKey("  " + s + "\n") // as read from a file
	is.NoErr(err)
	is.Equal(back, k)

	// The parsed key really works with the same secret.
	r1, r2 := mustRing(t, k), mustRing(t, back)
	env, _ := seal(t, r1, crypto.Header{}, []byte("x"))
	_, _, err = r2.Open(nil, env, nil)
	is.NoErr(err)

	other := cipherKey(t, c, "zone.A_1-x")
	is.True(!bytes.Equal(other.Secret, k.Secret)) // secrets are random

	// The long and the explicit names parse too.
	secret := base64.StdEncoding.EncodeToString(k.Secret)
	for _, name := range []string{c.Name(), c.String(), strings.ToUpper(c.Name())} {
		back, err = crypto.ParseKey("zone.A_1-x:" + name + ":" + secret)
		is.NoErr(err)
		is.Equal(back, k)
	}
	got, err := crypto.ParseCipher(c.Name())
	is.NoErr(err)
	is.Equal(got, c)
}

// TestParseMixedKeyring: a ring in the middle of a rotation from one
// cipher to the other holds both; each key seals under its own.
func TestParseMixedKeyring(t *testing.T) {
	is := is.New(t)
	r, err := crypto.ParseKeyring("new:sm4:" + b64(16, 1) + ",old:" + b64(32, 2) + ",older:aes:" + b64(32, 3))
	is.NoErr(err)
	is.Equal(r.ActiveID(), "new")
	is.Equal(r.ActiveCipher(), crypto.SM4GCM)
	for id, c := range map[string]crypto.Cipher{"new": crypto.SM4GCM, "old": crypto.AES256GCM, "older": crypto.AES256GCM} {
		env, h, err := r.SealWith(nil, id, crypto.Header{}, []byte("x"))
		is.NoErr(err)
		is.Equal(h.Cipher, c)
		back, _, err := r.Open(nil, env, nil)
		is.NoErr(err)
		is.Equal(back.Cipher, c)
	}
	is.Equal(fmt.Sprint(crypto.Key{ID: "s", Cipher: crypto.SM4GCM, Secret: make([]byte, 16)}), "key(s, sm4-gcm)")
	_, err = crypto.ParseCipher("des")
	is.True(err != nil)
}

func TestGenerateKeyRejectsBadID(t *testing.T) {
	for _, id := range []string{"", "a b", "a:b", "a,b", "ä", strings.Repeat("a", 33)} {
		_, err := crypto.GenerateKey(id)
		if err == nil {
			t.Errorf("GenerateKey(%q) succeeded", id)
		}
	}
	if _, err := crypto.GenerateKey(strings.Repeat("a", 32)); err != nil {
		t.Errorf("32-char id rejected: %v", err)
	}
}

func TestParseKeyring(t *testing.T) {
	is := is.New(t)
	s := " k1:" + b64(32, 1) + " ,\n\tk2:" + b64(32, 2) + "\n"
	r, err := crypto.ParseKeyring(s)
	is.NoErr(err)
	is.Equal(r.ActiveID(), "k1") // the first key is active

	// k2 opens but does not seal.
	r2, err := crypto.ParseKeyring("k2:" + b64(32, 2))
	is.NoErr(err)
	env, _ := seal(t, r2, crypto.Header{}, []byte("x"))
	_, _, err = r.Open(nil, env, nil)
	is.NoErr(err)
	env, h := seal(t, r, crypto.Header{}, []byte("x"))
	is.Equal(h.KeyID, "k1")
	_, _, err = r2.Open(nil, env, nil)
	is.True(errors.Is(err, crypto.ErrUnknownKey))
}

func TestParseKeyringErrors(t *testing.T) {
	good := "k1:" + b64(32, 1)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "empty"},
		{"blank", "  \n ", "empty"},
		{"empty item", good + ",", "item 2"},
		{"empty middle item", good + ", ,k2:" + b64(32, 2), "item 2"},
		{"no colon", "k1" + b64(32, 1), ":"},
		{"bad base64", "k1:" + b64(32, 1)[:43] + "!", "base64"},
		{"base64 url alphabet", "k1:" + strings.Repeat("-", 43) + "=", "base64"},
		{"short secret", "k1:" + b64(16, 1), "16 bytes"},
		{"long secret", "k1:" + b64(33, 1), "33 bytes"},
		{"empty secret", "k1:", "0 bytes"},
		{"duplicate id", good + ",k1:" + b64(32, 2), "duplicate"},
		{"duplicate id same secret", good + "," + good, "duplicate"},
		{"bad id chars", "k/1:" + b64(32, 1), "key id"},
		{"space in id", "k 1:" + b64(32, 1), "key id"},
		{"empty id", ":" + b64(32, 1), "key id"},
		{"long id", strings.Repeat("a", 33) + ":" + b64(32, 1), "key id"},
		{"bad second item", good + ",k2:" + b64(31, 2), "item 2"},
		{"sm4 with an aes secret", "k1:sm4:" + b64(32, 1), "sm4-gcm secret is 32 bytes, want 16"},
		{"aes with an sm4 secret", "k1:aes:" + b64(16, 1), "aes-256-gcm secret is 16 bytes, want 32"},
		{"unknown cipher", "k1:des:" + b64(16, 1), "unknown cipher"},
		{"empty cipher", "k1::" + b64(16, 1), "unknown cipher"},
		{"sm4 empty secret", "k1:sm4:", "0 bytes"},
		{"sm4 duplicate of aes id", good + ",k1:sm4:" + b64(16, 2), "duplicate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			r, err := crypto.ParseKeyring(tc.in)
			is.True(err != nil)
			is.True(r == nil)
			is.True(strings.Contains(err.Error(), tc.want))
			// No secret material in the message.
			for _, secret := range []string{b64(32, 1), b64(32, 2), b64(16, 1), b64(16, 2), b64(33, 1), b64(31, 2)} {
				is.True(!strings.Contains(err.Error(), secret))
			}
			_, err = crypto.ParseKey(tc.in)
			if !strings.Contains(tc.in, ",") {
				is.True(err != nil) // ParseKey rejects the same single items
			}
		})
	}
}

func TestNewKeyringValidation(t *testing.T) {
	k1, k2 := mustKey(t, "k1"), mustKey(t, "k2")
	for _, tc := range []struct {
		name   string
		active crypto.Key
		older  []crypto.Key
	}{
		{"short active secret", crypto.Key{ID: "a", Secret: make([]byte, 16)}, nil},
		{"nil secret", crypto.Key{ID: "a"}, nil},
		{"bad active id", crypto.Key{ID: "a b", Secret: make([]byte, 32)}, nil},
		{"bad older", k1, []crypto.Key{{ID: "o", Secret: make([]byte, 31)}}},
		{"duplicate active/older", k1, []crypto.Key{k2, {ID: "k1", Secret: k2.Secret}}},
		{"duplicate older", k1, []crypto.Key{k2, k2}},
		{"sm4 with 32 bytes", crypto.Key{ID: "a", Secret: make([]byte, 32), Cipher: crypto.SM4GCM}, nil},
		{"unknown cipher", crypto.Key{ID: "a", Secret: make([]byte, 32), Cipher: 9}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := crypto.NewKeyring(tc.active, tc.older...)
			if err == nil || r != nil {
				t.Fatalf("NewKeyring succeeded")
			}
		})
	}
	is := is.New(t)
	r, err := crypto.NewKeyring(k2, k1)
	is.NoErr(err)
	is.Equal(r.ActiveID(), "k2")
}

// TestKeyringMessageLimit: the keyring counts what it seals under its
// active key, warns once at WarnAt, and refuses past MaxMessages until a
// new key is active; opening is not limited.
func TestKeyringMessageLimit(t *testing.T) {
	is := is.New(t)
	var logs bytes.Buffer
	k1, k2 := mustKey(t, "k1"), mustKey(t, "k2")
	r, err := crypto.NewKeyringOptions(&crypto.KeyringOptions{MaxMessages: 10, WarnAt: 8,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, k1)
	is.NoErr(err)
	var last []byte
	for i := range 10 {
		env, _, err := r.Seal(nil, crypto.Header{}, []byte("x"))
		is.NoErr(err)
		last = env
		is.Equal(r.Sealed(), uint64(i+1))
		is.Equal(strings.Count(logs.String(), "rotate the key soon"), map[bool]int{true: 1, false: 0}[i+1 >= 8])
	}
	_, _, err = r.Seal(nil, crypto.Header{}, []byte("x"))
	is.True(errors.Is(err, crypto.ErrKeyExhausted))
	is.True(strings.Contains(err.Error(), `"k1"`))
	is.Equal(r.Sealed(), uint64(10)) // the refusal sealed nothing
	_, _, err = r.Open(nil, last, nil)
	is.NoErr(err)
	// A malformed header is refused before it counts.
	fresh, _ := crypto.NewKeyringOptions(&crypto.KeyringOptions{MaxMessages: 1}, k1)
	_, _, err = fresh.Seal(nil, crypto.Header{Sender: strings.Repeat("s", 100)}, nil)
	is.True(errors.Is(err, crypto.ErrMalformed))
	is.Equal(fresh.Sealed(), uint64(0))
	// Rotation: the new active key seals again and the old one still opens.
	rotated, err := crypto.NewKeyringOptions(&crypto.KeyringOptions{MaxMessages: 10}, k2, k1)
	is.NoErr(err)
	_, _, err = rotated.Seal(nil, crypto.Header{}, []byte("x"))
	is.NoErr(err)
	_, _, err = rotated.Open(nil, last, nil)
	is.NoErr(err)
	// The default limit is the documented one.
	def, _ := crypto.ParseKeyring(k1.Encode())
	for range 3 {
		def.Seal(nil, crypto.Header{}, nil)
	}
	is.Equal(def.Sealed(), uint64(3))
	is.Equal(crypto.DefaultMaxMessages, 1<<31)
}

// TestSealWith: an answer sealed under a named older key opens with a
// keyring that holds only that key, and counts against that key.
func TestSealWith(t *testing.T) {
	is := is.New(t)
	oldK, newK := mustKey(t, "old"), mustKey(t, "new")
	gw := mustRing(t, newK, oldK)
	peer := mustRing(t, oldK)
	env, h, err := gw.SealWith(nil, "old", crypto.Header{Sender: "external"}, []byte("answer"))
	is.NoErr(err)
	is.Equal(h.KeyID, "old")
	_, plain, err := peer.Open(nil, env, nil)
	is.NoErr(err)
	is.Equal(string(plain), "answer")
	is.Equal(gw.SealedBy("old"), uint64(1))
	is.Equal(gw.Sealed(), uint64(0)) // the active key sealed nothing
	_, _, err = gw.SealWith(nil, "nobody", crypto.Header{}, nil)
	is.True(errors.Is(err, crypto.ErrUnknownKey))
}

func TestNewKeyText(t *testing.T) {
	is := is.New(t)
	one, err := crypto.NewKeyText("", "")
	is.NoErr(err)
	r, err := crypto.ParseKeyring(one)
	is.NoErr(err)
	is.True(strings.HasPrefix(r.ActiveID(), "k20")) // named after the date
	two, err := crypto.NewKeyText("k-next", one)
	is.NoErr(err)
	r, err = crypto.ParseKeyring(two)
	is.NoErr(err)
	is.Equal(r.ActiveID(), "k-next")         // the new key seals
	is.True(strings.HasSuffix(two, ","+one)) // the old ones follow
	other, err := crypto.NewKeyText("k-next", "")
	is.NoErr(err)
	is.True(other != strings.Split(two, ",")[0]) // a fresh secret each time

	_, err = crypto.NewKeyText("bad id", "")
	is.True(err != nil)
	_, err = crypto.NewKeyText("k-next", two) // the id is taken
	is.True(err != nil)
	_, err = crypto.NewKeyText("k3", "not a ring")
	is.True(err != nil)
}

// TestNewCipherKeyText: an SM4 key text rotates an AES ring, and an
// unknown cipher name is refused.
func TestNewCipherKeyText(t *testing.T) {
	is := is.New(t)
	old, err := crypto.NewKeyText("k-aes", "")
	is.NoErr(err)
	two, err := crypto.NewCipherKeyText("sm4", "k-sm4", old)
	is.NoErr(err)
	is.True(strings.HasPrefix(two, "k-sm4:sm4:"))
	r, err := crypto.ParseKeyring(two)
	is.NoErr(err)
	is.Equal(r.ActiveCipher(), crypto.SM4GCM)
	k, err := crypto.ParseKey(strings.Split(two, ",")[0])
	is.NoErr(err)
	is.Equal(len(k.Secret), 16)
	_, err = crypto.NewCipherKeyText("des", "k", "")
	is.True(err != nil)
	aes, err := crypto.NewCipherKeyText("", "k", "")
	is.NoErr(err)
	is.Equal(strings.Count(aes, ":"), 1) // the form older releases read
}
