package syncer

import (
	"context"
	"io"
)

// FileInfo describes a stored file.
type FileInfo struct {
	Key    string
	Size   int64
	MD5    string // lowercase hex, when the store knows it (else "")
	SHA256 string // lowercase hex, when the store knows it (else "")
}

// FileStore is where a zone's files live: a local directory, an S3
// bucket (the intranet "unstructured platform"), or a read-only HTTP(S)
// source for rows that hold URLs. Keys are slash-separated relative paths
// (an HTTP source takes absolute URLs). Implementations must be safe for
// concurrent use; storage/filestoretest is their conformance suite.
type FileStore interface {
	// Stat returns the file's size (and checksums where known). A missing
	// file is an error wrapping fs.ErrNotExist; a key that is not a clean
	// path, gapsync.ErrBadPath; a URL outside the allowlist,
	// gapsync.ErrForbiddenURL. Retrying other errors is safe.
	Stat(ctx context.Context, key string) (FileInfo, error)

	// OpenRange returns a reader of n bytes of the file from offset off.
	// Several ranges of one file may be open at once. The caller closes
	// it. Errors as for Stat; reading fewer than n bytes is an error
	// (io.ErrUnexpectedEOF) the caller sees from Read.
	OpenRange(ctx context.Context, key string, off, n int64) (io.ReadCloser, error)

	// Put stores exactly size bytes read from r under key, replacing any
	// file there, atomically: a reader sees the old file or the new one,
	// never a part. info.MD5 and info.SHA256, when set, are kept with the
	// object where the store has room for metadata (S3 user metadata), so
	// that they survive multipart uploads whose ETag is not an MD5. A read
	// of r that fails, or that yields other than size bytes, stores
	// nothing. A read-only store returns gapsync.ErrReadOnly.
	Put(ctx context.Context, key string, r io.Reader, size int64, info FileInfo) error
}
