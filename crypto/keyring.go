package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
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
	aeads    map[string]cipher.AEAD // by key id, includes the active key
	opts     KeyringOptions
	sealed   map[string]*atomic.Uint64 // envelopes sealed, by key id
}

// DefaultMaxMessages is the default KeyringOptions.MaxMessages: 2^31,
// half the 2^32 envelopes that random 96-bit GCM nonces allow under one
// key (NIST SP 800-38D), since the other zone seals under the same key.
const DefaultMaxMessages = 1 << 31

// KeyringOptions tune a Keyring. Nil gives the defaults.
type KeyringOptions struct {
	// MaxMessages is how many envelopes the keyring seals under its active
	// key before Seal refuses with ErrKeyExhausted, so that operators
	// rotate before nonces become likely to repeat. The count is this
	// keyring's (one process, since it started): set the limit with room
	// for the other zone and for restarts. Default DefaultMaxMessages.
	MaxMessages uint64
	// WarnAt is the count at which Logger is warned, once, that the key
	// should be rotated. Default three quarters of MaxMessages.
	WarnAt uint64
	// Logger receives that warning. Default: slog.Default().
	Logger *slog.Logger
}

// NewKeyring returns a keyring that seals with active and opens envelopes
// sealed with active or any of older. Every key is validated; duplicate ids
// are an error. It has the default options.
func NewKeyring(active Key, older ...Key) (*Keyring, error) {
	return NewKeyringOptions(nil, active, older...)
}

// NewKeyringOptions is NewKeyring with options; o may be nil.
func NewKeyringOptions(o *KeyringOptions, active Key, older ...Key) (*Keyring, error) {
	r := &Keyring{aeads: make(map[string]cipher.AEAD, 1+len(older)), sealed: map[string]*atomic.Uint64{}}
	if o != nil {
		r.opts = *o
	}
	if r.opts.MaxMessages == 0 {
		r.opts.MaxMessages = DefaultMaxMessages
	}
	if r.opts.WarnAt == 0 || r.opts.WarnAt > r.opts.MaxMessages {
		r.opts.WarnAt = r.opts.MaxMessages - r.opts.MaxMessages/4
	}
	if r.opts.Logger == nil {
		r.opts.Logger = slog.Default()
	}
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
		r.sealed[k.ID] = new(atomic.Uint64)
		if i < 0 {
			r.activeID = k.ID
		}
	}
	return r, nil
}

// ParseKeyring parses a comma-separated list of keys in their textual form,
// "id:base64,id:base64,...". Whitespace around items is ignored. The first
// key is the active one; the rest only open. Empty input, empty items,
// malformed items and duplicate ids are errors. Error messages never contain
// a secret.
func ParseKeyring(s string) (*Keyring, error) { return ParseKeyringOptions(s, nil) }

// ParseKeyringOptions is ParseKeyring with options; o may be nil.
func ParseKeyringOptions(s string, o *KeyringOptions) (*Keyring, error) {
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
	return NewKeyringOptions(o, keys[0], keys[1:]...)
}

// ActiveID returns the id of the key that Seal uses.
func (r *Keyring) ActiveID() string { return r.activeID }

// Sealed returns how many envelopes this keyring has sealed under its
// active key, for a gauge next to KeyringOptions.MaxMessages.
func (r *Keyring) Sealed() uint64 { return r.sealed[r.activeID].Load() }

// SealedBy returns how many envelopes this keyring has sealed under the
// key id (0 for an id it does not hold).
func (r *Keyring) SealedBy(id string) uint64 {
	if c, ok := r.sealed[id]; ok {
		return c.Load()
	}
	return 0
}

// count reserves one seal under the key id, or refuses past the limit.
func (r *Keyring) count(id string) error {
	c := r.sealed[id]
	n := c.Add(1)
	if n > r.opts.MaxMessages {
		c.Add(^uint64(0)) // a refusal seals nothing
		return fmt.Errorf("%w: key %q has sealed %d envelopes, the limit (KeyringOptions.MaxMessages); make a new key active (see Key rotation)",
			ErrKeyExhausted, id, r.opts.MaxMessages)
	}
	if n == r.opts.WarnAt {
		r.opts.Logger.Warn("gapsync/crypto: rotate the key soon: random nonces are safe for a limited number of envelopes per key",
			"key", id, "sealed", n, "limit", r.opts.MaxMessages)
	}
	return nil
}

func newAEAD(secret []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// NewKeyText makes a new key and returns it in the form GAPSYNC_KEYS and
// ParseKeyring take: "id:base64", followed by the keys of ring when ring
// is not empty (a rotation: the new key seals, the old ones still open).
// An empty id names the key after today's date, "k20260102" (UTC). The
// error names what is wrong with id or ring, never a secret.
func NewKeyText(id, ring string) (string, error) {
	if id == "" {
		id = "k" + time.Now().UTC().Format("20060102")
	}
	k, err := GenerateKey(id)
	if err != nil {
		return "", fmt.Errorf("key id %q: %w", id, err)
	}
	out := k.Encode()
	if r := strings.TrimSpace(ring); r != "" {
		if _, err := ParseKeyring(r); err != nil {
			return "", fmt.Errorf("keyring to rotate: %w", err)
		}
		out += "," + r
		if _, err := ParseKeyring(out); err != nil { // the new id must be new
			return "", fmt.Errorf("key id %q with the keyring to rotate: %w", id, err)
		}
	}
	return out, nil
}
