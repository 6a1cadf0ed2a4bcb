package crypto_test

import (
	"fmt"
	"log"

	"github.com/gapsync/gapsync/crypto"
)

// Rotating from key "2025-01" to "2025-06": an envelope sealed before the
// rotation still opens, and new envelopes are sealed with the new key.
func Example_keyRotation() {
	oldKey, err := crypto.GenerateKey("2025-01")
	if err != nil {
		log.Fatal(err)
	}
	newKey, err := crypto.GenerateKey("2025-06")
	if err != nil {
		log.Fatal(err)
	}

	// Before: only the old key. In production this comes from an
	// environment variable, e.g. GAPSYNC_KEYS="2025-01:base64...".
	before, err := crypto.ParseKeyring(oldKey.Encode())
	if err != nil {
		log.Fatal(err)
	}
	req, _, err := before.Seal(nil, crypto.Header{Sender: "internet", Endpoint: "POST /v1/apply"}, []byte("batch 1"))
	if err != nil {
		log.Fatal(err)
	}

	// After: the new key is active (first), the old one only opens.
	after, err := crypto.ParseKeyring(newKey.Encode() + "," + oldKey.Encode())
	if err != nil {
		log.Fatal(err)
	}
	want := &crypto.OpenOptions{Sender: "internet", Endpoint: "POST /v1/apply"}
	h, body, err := after.Open(nil, req, want)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("opened %q sealed with %s\n", body, h.KeyID)

	req2, h2, err := after.Seal(nil, crypto.Header{Sender: "internet", Endpoint: "POST /v1/apply"}, []byte("batch 2"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("new envelopes are sealed with", h2.KeyID)

	// A process still on the old keyring cannot open them.
	if _, _, err := before.Open(nil, req2, want); err != nil {
		fmt.Println(err)
	}
	// Output:
	// opened "batch 1" sealed with 2025-01
	// new envelopes are sealed with 2025-06
	// gapsync/crypto: unknown key id: "2025-06"
}
