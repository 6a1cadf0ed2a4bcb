package crypto_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gapsync/gapsync/crypto"
	"github.com/matryer/is"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSM4GCMKnownAnswer: the SM4-GCM the keyring uses gives the test
// vector of RFC 8998, appendix A.1.
func TestSM4GCMKnownAnswer(t *testing.T) {
	is := is.New(t)
	k := crypto.Key{ID: "k1", Cipher: crypto.SM4GCM, Secret: unhex(t, "0123456789ABCDEFFEDCBA9876543210")}
	nonce := unhex(t, "00001234567800000000ABCD")
	aad := unhex(t, "FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
	pt := unhex(t, "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA")
	want := unhex(t, "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"+
		"83DE3541E4C2B58177E065A9BF7B62EC")
	is.Equal(gcmOf(t, k).Seal(nil, nonce, pt, aad), want)

	// And the keyring opens an envelope whose GCM is that library's.
	now := time.Unix(1750000000, 0)
	env := validRaw(now).build(t, k, pt)
	_, got, err := mustRing(t, k).Open(nil, env, &crypto.OpenOptions{Now: now})
	is.NoErr(err)
	is.Equal(got, pt)
}

// TestOldAESEnvelopeOpens: an envelope sealed by the release before there
// was a choice of cipher still opens, so AES-256-GCM deployments upgrade
// one process at a time.
func TestOldAESEnvelopeOpens(t *testing.T) {
	is := is.New(t)
	k, err := crypto.ParseKey("k2025:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	is.NoErr(err)
	is.Equal(k.Cipher, crypto.AES256GCM)
	env := unhex(t, "475345012a056b32303235026d3108696e7465726e65740e504f5354202f76312f6170706c790018493fba64ef0000"+
		"db7b905bb2f11f724d68991fe57b3db0fa14a30a037103ce5c198c2c36c7ee190f35f5a1531fa4cd39dc43ecff")
	at := time.Unix(1750000000, 0)
	h, pt, err := mustRing(t, k).Open(nil, env, &crypto.OpenOptions{Now: at, Sender: "internet", Endpoint: "POST /v1/apply"})
	is.NoErr(err)
	is.Equal(string(pt), "sealed before SM4")
	is.Equal(h, crypto.Header{KeyID: "k2025", MessageID: "m1", Sender: "internet", Endpoint: "POST /v1/apply", Time: at.UTC()})

	// And what this release seals under an AES key is still version 1.
	again, _ := seal(t, mustRing(t, k), crypto.Header{MessageID: "m1", Sender: "internet", Endpoint: "POST /v1/apply", Time: at}, []byte("sealed before SM4"))
	nonceAt := len(env) - len("sealed before SM4") - 16 - 12
	is.Equal(again[:nonceAt], env[:nonceAt])
}

// TestCipherBoundInHeader: an envelope claiming a cipher other than its
// key's fails, whichever way round, whether the claim was edited in or
// the zones hold one id under two ciphers.
func TestCipherBoundInHeader(t *testing.T) {
	aesK, sm4K := cipherKey(t, crypto.AES256GCM, "k"), cipherKey(t, crypto.SM4GCM, "k")
	aesRing, sm4Ring := mustRing(t, aesK), mustRing(t, sm4K)
	now := time.Unix(1750000000, 0)
	h := crypto.Header{Time: now, Sender: "internet"}
	aesEnv, ah := seal(t, aesRing, h, []byte("body"))
	sm4Env, sh := seal(t, sm4Ring, h, []byte("body"))

	is := is.New(t)
	is.Equal(ah.Cipher, crypto.AES256GCM)
	is.Equal(sh.Cipher, crypto.SM4GCM)
	peek, err := crypto.PeekHeader(sm4Env)
	is.NoErr(err)
	is.Equal(peek.Cipher, crypto.SM4GCM)
	is.Equal(string(aesEnv[:4]), "GSE\x01")
	is.Equal(string(sm4Env[:5]), "GSE\x02\x01")

	// Relabelled: an SM4 envelope rewritten as version 1 (AES), and an
	// AES envelope rewritten as version 2 naming SM4.
	asAES := append([]byte("GSE\x01"), sm4Env[5:]...)
	asSM4 := append([]byte("GSE\x02\x01"), aesEnv[4:]...)
	// Hand-built under the SM4 secret with an AAD that claims AES: GCM
	// would verify it, the cipher check must not.
	forged := validRaw(now)
	forged.fields[0] = []byte("k")
	forged.magic = []byte("GSE\x01")
	claimAES := forged.build(t, sm4K, []byte("body"))

	for _, tc := range []struct {
		name string
		ring *crypto.Keyring
		env  []byte
	}{
		{"aes envelope, key held as sm4", sm4Ring, aesEnv},
		{"sm4 envelope, key held as aes", aesRing, sm4Env},
		{"sm4 envelope relabelled aes", sm4Ring, asAES},
		{"aes envelope relabelled sm4", aesRing, asSM4},
		{"sm4 secret under an aes header", sm4Ring, claimAES},
	} {
		t.Run(tc.name, func(t *testing.T) {
			is := is.New(t)
			hdr, pt, err := tc.ring.Open(nil, tc.env, &crypto.OpenOptions{Now: now})
			is.Equal(sentinelOf(t, err), crypto.ErrTampered)
			is.True(strings.Contains(err.Error(), "sm4-gcm") && strings.Contains(err.Error(), "aes-256-gcm"))
			is.Equal(hdr, crypto.Header{})
			is.True(pt == nil)
		})
	}

	// The genuine ones open, so the refusals above are the cipher's.
	_, _, err = aesRing.Open(nil, aesEnv, &crypto.OpenOptions{Now: now})
	is.NoErr(err)
	_, _, err = sm4Ring.Open(nil, sm4Env, &crypto.OpenOptions{Now: now})
	is.NoErr(err)
	// A version 2 envelope cannot name AES-256-GCM: one encoding each.
	asV2AES := append([]byte("GSE\x02\x00"), aesEnv[4:]...)
	_, _, err = aesRing.Open(nil, asV2AES, &crypto.OpenOptions{Now: now})
	is.True(errors.Is(err, crypto.ErrMalformed))
	is.True(!bytes.Equal(asV2AES, aesEnv))
}
