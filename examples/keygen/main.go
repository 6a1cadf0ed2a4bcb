// Command keygen makes a new key for the keyring that the internet and
// external mains share, and prints it in the form GAPSYNC_KEYS takes.
//
//	keygen                         k20261201:BASE64…  (a new keyring of one key)
//	keygen -id k2027a -ring "$OLD"  k2027a:…,OLDKEYS  (rotation, step 1: the new key first)
//	keygen -cipher sm4              k20261201:sm4:BASE64…  (an SM4-GCM key; -ring may hold AES keys)
//
// Rotation without a pause: (1) give every external host the ring with the
// new key first and the old one after it, (2) then the internet hosts the
// same ring, (3) once no request sealed by the old key can still be on its
// way (after the replay horizon), drop the old key everywhere.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/gapsync/gapsync/crypto"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "keygen:", err)
		os.Exit(2)
	}
}

func run() error {
	id := flag.String("id", "k"+time.Now().UTC().Format("20060102"), "key id: letters, digits, '-' and '_'; it names the key in every envelope, so make it new")
	ring := flag.String("ring", "", "an existing keyring to rotate: the new key is put first, the old keys after it")
	cipher := flag.String("cipher", "aes", "the new key's cipher: aes (AES-256-GCM, id:base64) or sm4 (SM4-GCM, id:sm4:base64); a ring may mix them while it rotates from one to the other")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "keygen: prints a new key (or a rotated keyring) for GAPSYNC_KEYS; keep it secret, share it\n"+
			"only between the internet and external hosts, and store it in a file for GAPSYNC_KEYS_FILE.")
		flag.PrintDefaults()
	}
	flag.Parse()
	out, err := crypto.NewCipherKeyText(*cipher, *id, *ring)
	if err != nil {
		return err
	}
	fmt.Println(out)
	return nil
}
