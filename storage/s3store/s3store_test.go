package s3store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage/filestoretest"
	"github.com/gapsync/gapsync/storage/s3store"
	"github.com/gapsync/gapsync/syncer"
)

// requests counts what the fake S3 server saw.
type requests struct {
	mu                                   sync.Mutex
	create, parts, complete, abort, puts int
	partBytes                            atomic.Int64 // bytes of UploadPart requests the server has handled
}

// fakeS3 starts gofakes3 (in memory) on 127.0.0.1, creates bucket and
// returns a client for it and the request counters.
func fakeS3(t *testing.T, bucket string) (*s3.Client, *requests) {
	t.Helper()
	faker := gofakes3.New(s3mem.New()).Server()
	reqs := &requests{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		reqs.mu.Lock()
		switch {
		case r.Method == http.MethodPost && q.Has("uploads"):
			reqs.create++
		case r.Method == http.MethodPut && q.Has("partNumber"):
			reqs.parts++
		case r.Method == http.MethodPost && q.Has("uploadId"):
			reqs.complete++
		case r.Method == http.MethodDelete && q.Has("uploadId"):
			reqs.abort++
		case r.Method == http.MethodPut:
			reqs.puts++
		}
		reqs.mu.Unlock()
		faker.ServeHTTP(w, r)
		if r.Method == http.MethodPut && q.Has("partNumber") {
			reqs.partBytes.Add(r.ContentLength)
		}
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")),
	)
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.UsePathStyle = true
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return client, reqs
}

func newStore(t *testing.T, client *s3.Client, bucket string, o *s3store.Options) *s3store.Store {
	t.Helper()
	st, err := s3store.New(client, bucket, o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConformance(t *testing.T) {
	filestoretest.Run(t, filestoretest.Harness{
		New: func(t *testing.T) syncer.FileStore {
			client, _ := fakeS3(t, "zone")
			return newStore(t, client, "zone", nil)
		},
		Features: filestoretest.Features{Checksums: true, Versions: true},
	})
}

func TestConformanceWithPrefix(t *testing.T) {
	filestoretest.Run(t, filestoretest.Harness{
		New: func(t *testing.T) syncer.FileStore {
			client, _ := fakeS3(t, "zone")
			// Something outside the prefix that must stay invisible.
			_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String("zone"), Key: aws.String("missing.bin"), Body: strings.NewReader("outside"),
			})
			if err != nil {
				t.Fatal(err)
			}
			return newStore(t, client, "zone", &s3store.Options{Prefix: "files/in zone/"})
		},
		Features: filestoretest.Features{Checksums: true, Versions: true},
	})
}

// genReader yields n pseudo-random bytes without holding them, and checks
// on every read that the uploader has not run ahead of the server by more
// than limit bytes.
type genReader struct {
	rng       *rand.ChaCha8
	left, pos int64
	h         interface {
		io.Writer
		Sum([]byte) []byte
	}
	served    *atomic.Int64
	limit     int64
	maxAhead  int64
	overLimit bool
}

func newGen(n int64, seed byte, served *atomic.Int64, limit int64) *genReader {
	var s [32]byte
	s[0] = seed
	return &genReader{rng: rand.NewChaCha8(s), left: n, h: sha256.New(), served: served, limit: limit}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	g.rng.Read(p)
	g.h.Write(p)
	g.left -= int64(len(p))
	g.pos += int64(len(p))
	if g.served != nil {
		ahead := g.pos - g.served.Load()
		g.maxAhead = max(g.maxAhead, ahead)
		if ahead > g.limit {
			g.overLimit = true
		}
	}
	return len(p), nil
}

func TestMultipartStreams(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	client, reqs := fakeS3(t, "big")
	const part, conc, size = 5 << 20, 2, 40 << 20
	st := newStore(t, client, "big", &s3store.Options{PartSize: part, Concurrency: conc})

	// The uploader holds the first part, one part per worker and one
	// more being filled; the reader may not get further ahead of what
	// the server has received than that, so the file is never held whole.
	gen := newGen(size, 1, &reqs.partBytes, (conc+2)*part)
	is.NoErr(st.Put(ctx, "big/forty.bin", gen, size, syncer.FileInfo{}))
	t.Logf("reader ran at most %d MiB ahead of the server", gen.maxAhead>>20)
	is.True(!gen.overLimit) // the upload streamed, bounded by parts × concurrency

	reqs.mu.Lock()
	is.Equal(reqs.create, 1)        // one CreateMultipartUpload
	is.Equal(reqs.parts, size/part) // eight UploadPart requests
	is.Equal(reqs.complete, 1)      // one CompleteMultipartUpload
	is.Equal(reqs.abort, 0)         // nothing aborted
	reqs.mu.Unlock()

	info, err := st.Stat(ctx, "big/forty.bin")
	is.NoErr(err)
	is.Equal(info.Size, int64(size))
	head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("big"), Key: aws.String("big/forty.bin")})
	is.NoErr(err)
	t.Logf("multipart ETag %s", aws.ToString(head.ETag))

	// Round trip: read it back in ranges and compare digests.
	h := sha256.New()
	for off := int64(0); off < size; off += 7 << 20 {
		rc, err := st.OpenRange(ctx, "big/forty.bin", off, min(7<<20, size-off))
		is.NoErr(err)
		_, err = io.Copy(h, rc)
		is.NoErr(err)
		is.NoErr(rc.Close())
	}
	is.Equal(hex.EncodeToString(h.Sum(nil)), hex.EncodeToString(gen.h.Sum(nil))) // bytes back as uploaded
}

// A multipart upload whose reader comes up short is aborted, not completed.
func TestShortMultipartAborted(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	client, reqs := fakeS3(t, "bkt")
	st := newStore(t, client, "bkt", &s3store.Options{PartSize: 5 << 20, Concurrency: 2})
	const size = 12 << 20
	err := st.Put(ctx, "short.bin", newGen(size-1, 2, nil, 0), size, syncer.FileInfo{})
	is.True(errors.Is(err, io.ErrUnexpectedEOF)) // short reader
	err = st.Put(ctx, "long.bin", newGen(size+1, 3, nil, 0), size, syncer.FileInfo{})
	is.True(err != nil) // long reader
	reqs.mu.Lock()
	is.Equal(reqs.create, 2)   // both went multipart
	is.Equal(reqs.complete, 0) // neither completed
	is.Equal(reqs.abort, 2)    // both aborted
	reqs.mu.Unlock()
	for _, k := range []string{"short.bin", "long.bin"} {
		_, err = st.Stat(ctx, k)
		is.True(errors.Is(err, fs.ErrNotExist))
	}
	ups, err := client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String("bkt")})
	is.NoErr(err)
	is.Equal(len(ups.Uploads), 0) // no upload left open
}

// Checksums given to Put must be the bytes' own; the store refuses to label
// an object with wrong ones.
func TestChecksumMismatchStoresNothing(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	client, _ := fakeS3(t, "bkt")
	st := newStore(t, client, "bkt", &s3store.Options{PartSize: 5 << 20})
	data := []byte("the real bytes")
	wrong := strings.Repeat("0", 64)
	err := st.Put(ctx, "f", bytes.NewReader(data), int64(len(data)), syncer.FileInfo{SHA256: wrong})
	is.True(errors.Is(err, gapsync.ErrChecksumMismatch))
	_, err = st.Stat(ctx, "f")
	is.True(errors.Is(err, fs.ErrNotExist))

	big := newGen(11<<20, 4, nil, 0)
	err = st.Put(ctx, "g", big, 11<<20, syncer.FileInfo{MD5: strings.Repeat("a", 32)})
	is.True(errors.Is(err, gapsync.ErrChecksumMismatch)) // multipart, refused at the end
	_, err = st.Stat(ctx, "g")
	is.True(errors.Is(err, fs.ErrNotExist))

	err = st.Put(ctx, "h", bytes.NewReader(data), int64(len(data)), syncer.FileInfo{MD5: "not hex"})
	is.True(err != nil) // malformed checksum refused
}

// A reader's own error comes back from Put.
func TestReaderErrorReturned(t *testing.T) {
	is := is.New(t)
	client, _ := fakeS3(t, "bkt")
	st := newStore(t, client, "bkt", nil)
	boom := errors.New("boom")
	err := st.Put(context.Background(), "f", io.MultiReader(strings.NewReader("abc"), errReader{boom}), 10, syncer.FileInfo{})
	is.True(errors.Is(err, boom))
	is.Equal(strings.Count(err.Error(), "s3store:"), 1) // wrapped once
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestOptions(t *testing.T) {
	is := is.New(t)
	client := s3.New(s3.Options{Region: "us-east-1"})
	_, err := s3store.New(client, "b", &s3store.Options{PartSize: 1 << 20})
	is.True(err != nil) // part size under 5 MiB
	_, err = s3store.New(client, "", nil)
	is.True(err != nil) // no bucket
	_, err = s3store.New(nil, "b", nil)
	is.True(err != nil) // no client
	_, err = s3store.New(client, "b", nil)
	is.NoErr(err)
}

// Stat on a missing object, and OpenRange with n == 0, make the requests
// one expects: a zero-length range makes none.
func TestZeroRangeNoRequest(t *testing.T) {
	is := is.New(t)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer srv.Close()
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""), RetryMaxAttempts: 1})
	st := newStore(t, client, "bkt", nil)
	rc, err := st.OpenRange(context.Background(), "x", 5, 0)
	is.NoErr(err)
	b, err := io.ReadAll(rc)
	is.NoErr(err)
	is.Equal(len(b), 0)
	is.Equal(n.Load(), int64(0)) // no request for an empty range
	_, err = st.Stat(context.Background(), "x")
	is.True(err != nil)
	is.True(!errors.Is(err, fs.ErrNotExist)) // a server error is not a missing file
}
