package crypto_test

import (
	"testing"

	"github.com/gapsync/gapsync/crypto"
)

const benchSize = 1 << 20 // 1 MiB

var benchHeader = crypto.Header{Sender: "internet", Endpoint: "POST /v1/apply"}

// eachCipherB runs the benchmark f once under every cipher, as a
// sub-benchmark named after it (BenchmarkSeal/sm4-gcm).
func eachCipherB(b *testing.B, f func(b *testing.B, c crypto.Cipher)) {
	for _, c := range crypto.Ciphers {
		b.Run(c.String(), func(b *testing.B) { f(b, c) })
	}
}

func BenchmarkSeal(b *testing.B) { eachCipherB(b, benchSeal) }

func benchSeal(b *testing.B, c crypto.Cipher) {
	r := mustRing(b, cipherKey(b, c, "k1"))
	pt := make([]byte, benchSize)
	buf := make([]byte, 0, benchSize+1024)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		env, _, err := r.Seal(buf[:0], benchHeader, pt)
		if err != nil {
			b.Fatal(err)
		}
		buf = env
	}
}

func BenchmarkOpen(b *testing.B) { eachCipherB(b, benchOpen) }

func benchOpen(b *testing.B, c crypto.Cipher) {
	r := mustRing(b, cipherKey(b, c, "k1"))
	env, _, err := r.Seal(nil, benchHeader, make([]byte, benchSize))
	if err != nil {
		b.Fatal(err)
	}
	o := &crypto.OpenOptions{Sender: "internet", Endpoint: "POST /v1/apply"}
	out := make([]byte, 0, benchSize)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		_, pt, err := r.Open(out[:0], env, o)
		if err != nil {
			b.Fatal(err)
		}
		out = pt
	}
}
