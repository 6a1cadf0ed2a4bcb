package gapsync

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// FileID is the id of the record of ref from origin: the same on both
// sides, so a reference is recorded once however often it is found. It is
// derived from the reference's canonical form (CanonicalRef), so spellings
// of one file ("a%20b.png", "a b.png") share one record and are read once.
func FileID(origin Side, ref string) string {
	h := sha256.Sum256([]byte(string(origin) + "\x00" + CanonicalRef(ref)))
	return hex.EncodeToString(h[:16])
}

// CanonicalRef is the one form of a reference that all its spellings
// share. An http or https URL becomes its URLKey; any other reference is
// percent-decoded once (a spelling that does not decode stays as it is).
// Surrounding space is dropped. Two references with the same canonical
// form name the same file; two with different ones never share a record
// or a published key.
func CanonicalRef(ref string) string {
	ref = strings.TrimSpace(ref)
	lower := strings.ToLower(ref)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
		if k, err := URLKey(ref); err == nil {
			return k
		}
		return ref
	}
	if dec, err := url.PathUnescape(ref); err == nil {
		return dec
	}
	return ref
}

// URLKey is the relative key under which the file an http(s) URL names is
// published: "SCHEME:/HOST/PATH", where HOST is lowercased (with its port,
// if any) and PATH keeps the URL's segments, each percent-decoded unless
// its decoded form holds a '/', '%', '?', backslash or NUL (then it is
// escaped again, canonically), followed, when the URL has a query, by
// '?' and 32 hex digits of the query's SHA-256. The fragment is dropped:
// it is not sent to the server. The mapping is injective: spellings of
// one URL (escaped or not, any case of scheme and host) give one key,
// URLs that differ in scheme, host, port, path or query give different
// keys, and no path reference normalises to a key whose first element
// ends in ':' (pathmap refuses those), so no path can take a URL's key.
func URLKey(ref string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(ref))
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%w: %q is not a URL", ErrForbiddenURL, ref)
	}
	if u.User != nil {
		return "", fmt.Errorf("%w: %q carries credentials", ErrForbiddenURL, ref)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("%w: %q: only http and https URLs are fetched", ErrForbiddenURL, ref)
	}
	var b strings.Builder
	b.WriteString(scheme + ":/" + strings.ToLower(u.Host))
	if p := u.EscapedPath(); p != "" {
		for _, seg := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
			dec, err := url.PathUnescape(seg)
			if err != nil {
				return "", fmt.Errorf("%w: %q: %v", ErrBadPath, ref, err)
			}
			if strings.ContainsAny(dec, "/%?\\\x00") {
				dec = url.PathEscape(dec)
			}
			b.WriteString("/" + dec)
		}
	}
	if u.RawQuery != "" || u.ForceQuery {
		h := sha256.Sum256([]byte(u.RawQuery))
		b.WriteString("?" + hex.EncodeToString(h[:16]))
	}
	return b.String(), nil
}

// File statuses, per step of the file flow (seed 1.1.4, 1.3, 1.4). A
// record lives in the database of each side it reaches.
const (
	FileExtracted = "extracted" // a reference was found in a row; bytes not read yet
	FileStored    = "stored"    // the bytes are in this database as chunks
	FileIncoming  = "incoming"  // a record from the other side; chunks arriving
	FilePartial   = "partial"   // incoming while the other side still stages it: sums unknown, never published
	FilePublished = "published" // verified and written to this side's store
	FileFailed    = "failed"    // the last attempt failed; Error says why; retried
	FileRefused   = "refused"   // the reference is not allowed (a path outside the store, a URL outside the allowlist); never fetched, never retried
)

// FileRecord describes one referenced file as it travels.
type FileRecord struct {
	ID        string `json:"id"`     // hex of SHA-256(origin, ref), 32 chars
	Origin    Side   `json:"origin"` // the zone whose store holds the original
	Ref       string `json:"ref"`    // the reference as rows hold it
	Size      int64  `json:"size"`
	MD5       string `json:"md5"`
	SHA256    string `json:"sha256"`
	SM3       string `json:"sm3,omitempty"` // lowercase hex, when the zones use SM3 digests (syncer.FileOptions.Digest)
	ChunkSize int64  `json:"chunk_size"`
	Chunks    int    `json:"chunks"`
	Status    string `json:"status"`
	Error     string `json:"error,omitempty"`
	Attempts  int    `json:"attempts"`
	LocalKey  string `json:"local_key,omitempty"` // where it is published on this side
	// Changed is when this side last wrote the record (not sent).
	Changed time.Time `json:"-"`
}

// Progress reports a long transfer, for a host's progress bar.
type Progress struct {
	Step       string // "stage", "send", "receive", "publish"
	File       string // the reference
	BytesDone  int64
	BytesTotal int64
	FilesDone  int
	FilesTotal int
}

// Chunk is one stored piece of a file's bytes.
type Chunk struct {
	FileID string `json:"file_id"`
	Idx    int    `json:"idx"`
	MD5    string `json:"md5"`
	SHA256 string `json:"sha256"`
	Data   []byte `json:"-"`
}

// ChunkKey names one chunk of one file.
type ChunkKey struct {
	FileID string
	Idx    int
}

// Limits of every file record, the same on both sides. A record that
// crosses the gap (an offer, a pulled record) or is read back from a
// database before its chunks are listed or merged must pass
// FileRecord.Validate, so that no record can make a role list, allocate or
// read more than these allow.
const (
	// MinChunkSize and MaxChunkSize bound a record's ChunkSize.
	// syncer.FileOptions.ChunkSize must lie between them.
	MinChunkSize = 4 << 10
	MaxChunkSize = 64 << 20
	// MaxChunks bounds the chunks of one record: 1 TiB at the default
	// 4 MiB chunk size, 16 TiB at MaxChunkSize. A larger file needs a
	// larger ChunkSize; staging it fails with ErrTooLarge otherwise.
	MaxChunks = 1 << 18
	// MaxRefLen bounds the length of a record's reference in bytes.
	MaxRefLen = 4096
)

// ChunkCount is the number of chunks of size bytes in chunks of
// chunkSize (at least 1).
func ChunkCount(size, chunkSize int64) int64 {
	if size <= 0 {
		return 0
	}
	return (size-1)/max(chunkSize, 1) + 1
}

// Validate reports whether r can be what it claims: a known origin, an id
// that is the hash of its origin and reference, a chunk size within
// [MinChunkSize, MaxChunkSize], a chunk count that matches the size and is
// at most MaxChunks, and sums that are lowercase hex of the right length
// (none for a partial record, whose sums are not known yet). It checks
// fields only; which statuses and origins a caller accepts is the
// caller's. The error wraps ErrMalformed, or ErrTooLarge for a file over
// the limits.
func (r *FileRecord) Validate() error {
	switch {
	case r.Origin != Internet && r.Origin != Intranet:
		return fmt.Errorf("%w: file %.64q: origin %.16q", ErrMalformed, r.ID, r.Origin)
	case len(r.Ref) == 0 || len(r.Ref) > MaxRefLen:
		return fmt.Errorf("%w: file %.64q: reference of %d bytes (1..%d)", ErrMalformed, r.ID, len(r.Ref), MaxRefLen)
	case r.ID != FileID(r.Origin, r.Ref):
		return fmt.Errorf("%w: file id %.64q does not match its reference", ErrMalformed, r.ID)
	case r.ChunkSize < MinChunkSize || r.ChunkSize > MaxChunkSize:
		return fmt.Errorf("%w: file %s: chunk size %d outside %d..%d", ErrMalformed, r.ID, r.ChunkSize, MinChunkSize, MaxChunkSize)
	case r.Size < 0 || r.Chunks < 0 || int64(r.Chunks) != ChunkCount(r.Size, r.ChunkSize):
		return fmt.Errorf("%w: file %s: %d bytes in %d chunks of %d", ErrMalformed, r.ID, r.Size, r.Chunks, r.ChunkSize)
	case r.Chunks > MaxChunks:
		return fmt.Errorf("%w: file %s: %d chunks of %d bytes, over %d (raise the chunk size)", ErrTooLarge, r.ID, r.Chunks, r.ChunkSize, MaxChunks)
	case r.Attempts < 0:
		return fmt.Errorf("%w: file %s: %d attempts", ErrMalformed, r.ID, r.Attempts)
	}
	if r.Status == FilePartial {
		if r.MD5 != "" || r.SHA256 != "" || r.SM3 != "" {
			return fmt.Errorf("%w: partial file %s claims checksums", ErrMalformed, r.ID)
		}
		return nil
	}
	if !isHex(r.MD5, 32) || !isHex(r.SHA256, 64) || (r.SM3 != "" && !isHex(r.SM3, 64)) {
		return fmt.Errorf("%w: file %s: checksums missing or not hex", ErrMalformed, r.ID)
	}
	return nil
}

// isHex reports whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
