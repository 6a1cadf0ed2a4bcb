package crypto_test

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/gapsync/gapsync/crypto"
)

// fuzzAlloc returns the bytes allocated while f ran.
func fuzzAlloc(f func()) uint64 {
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return m1.TotalAlloc - m0.TotalAlloc
}

// FuzzOpen feeds the opener what anyone on the network can send: it must
// never panic, allocate more than about the envelope, return anything but
// one of its sentinels, or accept an envelope other than one sealed with
// the key (the seeds, unmodified, or modified only in bytes the AEAD does
// not cover, of which there are none). The ring holds an AES-256-GCM and
// an SM4-GCM key, and the seeds are sealed under each, so mutations cross
// from one cipher's layout to the other's.
func FuzzOpen(f *testing.F) {
	k := mustKey(f, "k1")
	ring := mustRing(f, k, mustKey(f, "k0"), cipherKey(f, crypto.SM4GCM, "s1"))
	now := time.Unix(1_700_000_000, 0)
	sealed := map[string]bool{}
	for _, s := range []struct {
		h    crypto.Header
		body string
	}{
		{crypto.Header{Sender: "internet", Endpoint: "POST /v1/apply", Time: now}, "GSB\x01"},
		{crypto.Header{Sender: "external", Endpoint: "RESP /v1/apply", ReplyTo: "0123456789abcdef0123456789abcdef", Time: now}, `{"rows":1}`},
		{crypto.Header{Time: now}, ""},
	} {
		for _, id := range []string{"k1", "s1"} {
			env, _, err := ring.SealWith(nil, id, s.h, []byte(s.body))
			if err != nil {
				f.Fatal(err)
			}
			sealed[string(env)] = true
			f.Add(env)
			f.Add(env[:len(env)/2])
			flipped := bytes.Clone(env)
			flipped[len(flipped)-1] ^= 1
			f.Add(flipped)
		}
	}
	f.Add([]byte{})
	f.Add([]byte("GSE\x01"))
	f.Add([]byte("GSE\x02"))
	f.Add([]byte("GSE\x02\x01"))
	f.Add([]byte("GSE\x01\xff\xff\xff\xff\x0f"))
	f.Add([]byte("GSE\x02\x01\xff\xff\xff\xff\x0f"))
	sentinels := []error{crypto.ErrMalformed, crypto.ErrUnknownKey, crypto.ErrTampered, crypto.ErrStale}
	f.Fuzz(func(t *testing.T, env []byte) {
		var err error
		var plain []byte
		n := fuzzAlloc(func() {
			_, plain, err = ring.Open(nil, env, &crypto.OpenOptions{Now: now})
		})
		if n > 64<<10+4*uint64(len(env)) { // room for the fuzz worker's own allocations, which TotalAlloc counts too
			t.Fatalf("Open allocated %d bytes for an envelope of %d", n, len(env))
		}
		if err == nil {
			if !sealed[string(env)] {
				t.Fatalf("Open accepted an envelope nobody sealed: %x", env)
			}
			if len(plain) > len(env) {
				t.Fatalf("plaintext of %d bytes from an envelope of %d", len(plain), len(env))
			}
			return
		}
		found := 0
		for _, s := range sentinels {
			if errors.Is(err, s) {
				found++
			}
		}
		if found != 1 {
			t.Fatalf("error %q wraps %d sentinels, want 1", err, found)
		}
		if _, perr := crypto.PeekHeader(env); perr != nil && !errors.Is(perr, crypto.ErrMalformed) {
			t.Fatalf("PeekHeader: %v", perr)
		}
	})
}
