package gapsync

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// FileID is the id of the record of ref from origin: the same on both
// sides, so a reference is recorded once however often it is found.
func FileID(origin Side, ref string) string {
	h := sha256.Sum256([]byte(string(origin) + "\x00" + ref))
	return hex.EncodeToString(h[:16])
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
