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
	// Version is an opaque token that changes whenever the file's content
	// does (an ETag; inode, size and times), for VersionedStore.OpenRangeAt;
	// "" when the store cannot tell.
	Version string
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

// VersionedStore is a FileStore that can tell that a file changed while
// it was being read. A file is staged as several ranges, read at
// different moments; without this, a file rewritten midway crosses as a
// mix of old and new bytes whose checksums match, since they are
// computed over what was read. With it, every range of a file is read at
// the version its Stat returned, and a change means staging again.
type VersionedStore interface {
	FileStore
	// OpenRangeAt is OpenRange of the file at the version Stat returned
	// (FileInfo.Version). When the file at key is no longer at that
	// version as the range is opened, or changes before the range is read
	// to its end, the error — from OpenRangeAt, or from Read or Close of
	// the reader — wraps gapsync.ErrChanged; reading again from a new
	// Stat is then safe. An empty version is OpenRange.
	OpenRangeAt(ctx context.Context, key, version string, off, n int64) (io.ReadCloser, error)
}

// BatchStore is a FileStore that stores many small files at once with
// their durability barriers shared: on a local disk one Put costs a sync
// of the file and one of its directory, and those syncs, not the bytes,
// bound how many small files a second a zone publishes. A publish uses
// PutBatch for a page of files it holds in memory.
type BatchStore interface {
	FileStore
	// PutBatch stores each item as Put would: atomically, and nothing
	// from a reader that fails or yields other than its size. It returns
	// one error an item, nil for each stored, in the order of items; when
	// it returns, every item stored is as durable as after a Put. Items
	// with the same key are stored in their order (the last one stays).
	// A failure of one item does not fail the others.
	PutBatch(ctx context.Context, items []PutItem) []error
}

// PutItem is one file of a PutBatch: Put's arguments.
type PutItem struct {
	Key  string
	R    io.Reader
	Size int64
	Info FileInfo
}
