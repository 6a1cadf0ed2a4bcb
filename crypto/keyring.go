package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

const (
	secretSize  = 32 // AES-256
	maxKeyIDLen = 32
)

// Key is a named AES-256 secret.
//
// ID is 1 to 32 characters from [A-Za-z0-9._-]; it travels in clear in every
// envelope so the receiver can pick the right secret. Secret is exactly 32
// bytes.
type Key struct {
	ID     string
	Secret []byte
}

// GenerateKey returns a Key with the given id and a secret read from
// crypto/rand.
func GenerateKey(id string) (Key, error) {
	if !validKeyID(id) {
		return Key{}, errInvalidKeyID
	}
	secret := make([]byte, secretSize)
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("gapsync/crypto: generate key: %w", err)
	}
	return Key{ID: id, Secret: secret}, nil
}

// Encode returns the textual form of k, "id:" followed by the standard
// base64 encoding of the secret. This is the form ParseKey and ParseKeyring
// read, as used in environment variables and key files. The result
// contains the secret: store it as you would a password.
func (k Key) Encode() string {
	return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret)
}

// String names the key without its secret, so that a Key passed to a
// logger or to fmt's %v and %s reveals nothing.
func (k Key) String() string { return "key(" + k.ID + ")" }

// GoString is String for %#v.
func (k Key) GoString() string { return k.String() }

// ParseKey parses the textual form produced by Key.Encode. Whitespace around
// s is ignored. Error messages never contain the secret.
func ParseKey(s string) (Key, error) {
	k, err := parseKey(s)
	if err != nil {
		return Key{}, fmt.Errorf("gapsync/crypto: parse key: %w", err)
	}
	return k, nil
}

var errInvalidKeyID = errors.New("gapsync/crypto: invalid key id: want 1 to 32 characters from [A-Za-z0-9._-]")

// parseKey returns errors without the package prefix so that callers can
// add their own context.
func parseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Key{}, errors.New("empty")
	}
	id, enc, ok := strings.Cut(s, ":")
	if !ok {
		return Key{}, errors.New(`missing ":" (want id:base64secret)`)
	}
	if !validKeyID(id) {
		// The id is not echoed: a malformed item may be a pasted secret.
		return Key{}, errors.New("invalid key id: want 1 to 32 characters from [A-Za-z0-9._-]")
	}
	secret, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return Key{}, fmt.Errorf("key %q: secret is not valid standard base64", id)
	}
	if len(secret) != secretSize {
		return Key{}, fmt.Errorf("key %q: secret is %d bytes, want %d", id, len(secret), secretSize)
	}
	return Key{ID: id, Secret: secret}, nil
}

func validKeyID(id string) bool {
	if len(id) == 0 || len(id) > maxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Keyring holds the key that seals (the active key) and older keys that
// still open. It is immutable after construction and safe for concurrent
// use. The secrets are expanded into cipher state at construction; later
// changes to the Key values passed in have no effect.
type Keyring struct {
	activeID string
	active   cipher.AEAD
	aeads    map[string]cipher.AEAD // by key id, includes the active key
}

// NewKeyring returns a keyring that seals with active and opens envelopes
// sealed with active or any of older. Every key is validated; duplicate ids
// are an error.
func NewKeyring(active Key, older ...Key) (*Keyring, error) {
	r := &Keyring{aeads: make(map[string]cipher.AEAD, 1+len(older))}
	for i := -1; i < len(older); i++ {
		k := active
		if i >= 0 {
			k = older[i]
		}
		if !validKeyID(k.ID) {
			return nil, errInvalidKeyID
		}
		if len(k.Secret) != secretSize {
			return nil, fmt.Errorf("gapsync/crypto: key %q: secret is %d bytes, want %d", k.ID, len(k.Secret), secretSize)
		}
		if _, dup := r.aeads[k.ID]; dup {
			return nil, fmt.Errorf("gapsync/crypto: duplicate key id %q", k.ID)
		}
		aead, err := newAEAD(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("gapsync/crypto: key %q: %w", k.ID, err)
		}
		r.aeads[k.ID] = aead
		if i < 0 {
			r.activeID, r.active = k.ID, aead
		}
	}
	return r, nil
}

// ParseKeyring parses a comma-separated list of keys in their textual form,
// "id:base64,id:base64,...". Whitespace around items is ignored. The first
// key is the active one; the rest only open. Empty input, empty items,
// malformed items and duplicate ids are errors. Error messages never contain
// a secret.
func ParseKeyring(s string) (*Keyring, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("gapsync/crypto: empty keyring")
	}
	items := strings.Split(s, ",")
	keys := make([]Key, 0, len(items))
	for i, item := range items {
		k, err := parseKey(item)
		if err != nil {
			return nil, fmt.Errorf("gapsync/crypto: keyring item %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return NewKeyring(keys[0], keys[1:]...)
}

// ActiveID returns the id of the key that Seal uses.
func (r *Keyring) ActiveID() string { return r.activeID }

func newAEAD(secret []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
