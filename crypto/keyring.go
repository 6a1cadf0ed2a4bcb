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

	"github.com/emmansun/gmsm/sm4"
)

const maxKeyIDLen = 32

// Cipher is the AEAD a key seals with. The zero value is AES-256-GCM, the
// cipher of every key written before there was a choice, so a Key or a
// Header that does not name one is AES-256-GCM.
type Cipher uint8

const (
	// AES256GCM is AES with a 32-byte key in GCM mode. Its keys are
	// written "id:base64" (or "id:aes:base64").
	AES256GCM Cipher = iota
	// SM4GCM is the Chinese national block cipher SM4 (GB/T 32907) with
	// a 16-byte key in GCM mode (GB/T 36624, RFC 8998). Its keys are
	// written "id:sm4:base64".
	SM4GCM
)

// Ciphers lists every cipher this package seals and opens.
var Ciphers = []Cipher{AES256GCM, SM4GCM}

// String returns "aes-256-gcm" or "sm4-gcm".
func (c Cipher) String() string {
	switch c {
	case AES256GCM:
		return "aes-256-gcm"
	case SM4GCM:
		return "sm4-gcm"
	}
	return fmt.Sprintf("cipher(%d)", uint8(c))
}

// Name is the short name used in a key's textual form and in flags:
// "aes" or "sm4".
func (c Cipher) Name() string {
	switch c {
	case AES256GCM:
		return "aes"
	case SM4GCM:
		return "sm4"
	}
	return c.String()
}

// KeySize is the length of the cipher's secret in bytes: 32 for
// AES-256-GCM, 16 for SM4-GCM.
func (c Cipher) KeySize() int {
	if c == SM4GCM {
		return 16
	}
	return 32
}

func (c Cipher) known() bool { return c == AES256GCM || c == SM4GCM }

// ParseCipher reads a cipher's short name ("aes", "sm4") or its full one
// ("aes-256-gcm", "sm4-gcm"), in any case.
func ParseCipher(s string) (Cipher, error) {
	for _, c := range Ciphers {
		if strings.EqualFold(s, c.Name()) || strings.EqualFold(s, c.String()) {
			return c, nil
		}
	}
	return 0, fmt.Errorf("gapsync/crypto: unknown cipher %q: want aes or sm4", s)
}

// Key is a named secret for one cipher.
//
// ID is 1 to 32 characters from [A-Za-z0-9._-]; it travels in clear in every
// envelope so the receiver can pick the right secret. Cipher is the AEAD
// (zero: AES-256-GCM). Secret is exactly Cipher.KeySize() bytes: 32 for
// AES-256-GCM, 16 for SM4-GCM.
type Key struct {
	ID     string
	Secret []byte
	Cipher Cipher
}

// GenerateKey returns an AES-256-GCM Key with the given id and a secret
// read from crypto/rand.
func GenerateKey(id string) (Key, error) { return GenerateCipherKey(AES256GCM, id) }

// GenerateCipherKey is GenerateKey for the cipher c.
func GenerateCipherKey(c Cipher, id string) (Key, error) {
	if !validKeyID(id) {
		return Key{}, errInvalidKeyID
	}
	if !c.known() {
		return Key{}, fmt.Errorf("gapsync/crypto: generate key: unknown %v", c)
	}
	secret := make([]byte, c.KeySize())
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("gapsync/crypto: generate key: %w", err)
	}
	return Key{ID: id, Secret: secret, Cipher: c}, nil
}

// Encode returns the textual form of k: "id:" followed by the standard
// base64 encoding of the secret for AES-256-GCM (the form that predates
// the choice of cipher, so older readers still take it), and
// "id:sm4:base64" for SM4-GCM. This is the form ParseKey and ParseKeyring
// read, as used in environment variables and key files. The result
// contains the secret: store it as you would a password.
func (k Key) Encode() string {
	secret := base64.StdEncoding.EncodeToString(k.Secret)
	if k.Cipher == AES256GCM {
		return k.ID + ":" + secret
	}
	return k.ID + ":" + k.Cipher.Name() + ":" + secret
}

// String names the key and its cipher without its secret, so that a Key
// passed to a logger or to fmt's %v and %s reveals nothing.
func (k Key) String() string {
	if k.Cipher == AES256GCM {
		return "key(" + k.ID + ")"
	}
	return "key(" + k.ID + ", " + k.Cipher.String() + ")"
}

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
		return Key{}, errors.New(`missing ":" (want id:base64secret or id:sm4:base64secret)`)
	}
	if !validKeyID(id) {
		// The id is not echoed: a malformed item may be a pasted secret.
		return Key{}, errors.New("invalid key id: want 1 to 32 characters from [A-Za-z0-9._-]")
	}
	// Standard base64 has no ':', so a second one ends a cipher name.
	c := AES256GCM
	if name, rest, ok := strings.Cut(enc, ":"); ok {
		var err error
		if c, err = ParseCipher(name); err != nil {
			// The name is not echoed either, for the same reason.
			return Key{}, fmt.Errorf("key %q: unknown cipher: want id:base64 (aes-256-gcm) or id:sm4:base64 (sm4-gcm)", id)
		}
		enc = rest
	}
	secret, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return Key{}, fmt.Errorf("key %q: secret is not valid standard base64", id)
	}
	if len(secret) != c.KeySize() {
		return Key{}, fmt.Errorf("key %q: %v secret is %d bytes, want %d", id, c, len(secret), c.KeySize())
	}
	return Key{ID: id, Secret: secret, Cipher: c}, nil
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
	aeads    map[string]ringKey // by key id, includes the active key
	opts     KeyringOptions
	sealed   map[string]*atomic.Uint64 // envelopes sealed, by key id
}

type ringKey struct {
	cipher.AEAD
	cipher Cipher
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
	r := &Keyring{aeads: make(map[string]ringKey, 1+len(older)), sealed: map[string]*atomic.Uint64{}}
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
		if !k.Cipher.known() {
			return nil, fmt.Errorf("gapsync/crypto: key %q: unknown %v", k.ID, k.Cipher)
		}
		if len(k.Secret) != k.Cipher.KeySize() {
			return nil, fmt.Errorf("gapsync/crypto: key %q: %v secret is %d bytes, want %d", k.ID, k.Cipher, len(k.Secret), k.Cipher.KeySize())
		}
		if _, dup := r.aeads[k.ID]; dup {
			return nil, fmt.Errorf("gapsync/crypto: duplicate key id %q", k.ID)
		}
		aead, err := newAEAD(k.Cipher, k.Secret)
		if err != nil {
			return nil, fmt.Errorf("gapsync/crypto: key %q: %w", k.ID, err)
		}
		r.aeads[k.ID] = ringKey{aead, k.Cipher}
		r.sealed[k.ID] = new(atomic.Uint64)
		if i < 0 {
			r.activeID = k.ID
		}
	}
	return r, nil
}

// ParseKeyring parses a comma-separated list of keys in their textual form,
// "id:base64,id:sm4:base64,...", ciphers mixed as they may be during a
// rotation from one to the other. Whitespace around items is ignored. The first
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

// ActiveCipher returns the cipher of the key that Seal uses.
func (r *Keyring) ActiveCipher() Cipher { return r.aeads[r.activeID].cipher }

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

func newAEAD(c Cipher, secret []byte) (cipher.AEAD, error) {
	var block cipher.Block
	var err error
	switch c {
	case AES256GCM:
		block, err = aes.NewCipher(secret)
	case SM4GCM:
		// gmsm's block offers crypto/cipher its own GCM (AES-NI for the
		// S-box, carry-less multiply for GHASH) where the CPU has them.
		block, err = sm4.NewCipher(secret)
	default:
		err = fmt.Errorf("unknown %v", c)
	}
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// NewKeyText makes a new AES-256-GCM key and returns it in the form
// GAPSYNC_KEYS and ParseKeyring take: "id:base64", followed by the keys of
// ring when ring is not empty (a rotation: the new key seals, the old ones
// still open). An empty id names the key after today's date, "k20260102"
// (UTC). The error names what is wrong with id or ring, never a secret.
func NewKeyText(id, ring string) (string, error) { return NewCipherKeyText("", id, ring) }

// NewCipherKeyText is NewKeyText for the cipher named by cipher, as
// ParseCipher reads it ("aes" or "sm4"; empty is "aes"). An SM4 key reads
// "id:sm4:base64"; ring may hold keys of either cipher, as during a
// rotation from one to the other.
func NewCipherKeyText(cipher, id, ring string) (string, error) {
	c := AES256GCM
	if cipher != "" {
		var err error
		if c, err = ParseCipher(cipher); err != nil {
			return "", err
		}
	}
	if id == "" {
		id = "k" + time.Now().UTC().Format("20060102")
	}
	k, err := GenerateCipherKey(c, id)
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
