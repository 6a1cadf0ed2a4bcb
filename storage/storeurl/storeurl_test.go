package storeurl_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/matryer/is"

	"github.com/gapsync/gapsync/storage/filestoretest"
	"github.com/gapsync/gapsync/storage/storeurl"
	"github.com/gapsync/gapsync/syncer"
)

// fake is gofakes3 with bucket "pub", recording the checksum headers of
// every upload request.
type fake struct {
	url string
	s3  *s3.Client
	mu  sync.Mutex
	sum []string // x-amz-sdk-checksum-algorithm or x-amz-checksum-* seen, one entry a PUT
	// multipartETag, when set, is an ETag the server answers as S3 does
	// for a multipart object, with "-2" after it: no MD5 then.
	multipartETag atomic.Pointer[string]
}

// etagWriter buffers an answer to rewrite one ETag in it.
type etagWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (w *etagWriter) WriteHeader(s int)           { w.status = s }
func (w *etagWriter) Write(b []byte) (int, error) { return w.body.Write(b) }

func newFake(t *testing.T) *fake {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	f := &fake{}
	faker := gofakes3.New(s3mem.New()).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			var h []string
			for k := range r.Header {
				if k = strings.ToLower(k); strings.HasPrefix(k, "x-amz-checksum-") || k == "x-amz-sdk-checksum-algorithm" || k == "x-amz-trailer" {
					h = append(h, k)
				}
			}
			f.mu.Lock()
			f.sum = append(f.sum, strings.Join(h, ","))
			f.mu.Unlock()
		}
		etag := f.multipartETag.Load()
		if etag == nil || r.Method == http.MethodPut || r.Method == http.MethodPost {
			faker.ServeHTTP(w, r)
			return
		}
		ew := &etagWriter{ResponseWriter: w, status: http.StatusOK}
		faker.ServeHTTP(ew, r)
		if v := w.Header().Get("ETag"); strings.Contains(v, *etag) {
			w.Header().Set("ETag", strings.Replace(v, *etag, *etag+"-2", 1))
		}
		body := bytes.ReplaceAll(ew.body.Bytes(), []byte(*etag), []byte(*etag+"-2"))
		if r.Method != http.MethodHead {
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		}
		w.WriteHeader(ew.status)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")))
	if err != nil {
		t.Fatal(err)
	}
	f.s3 = s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(srv.URL); o.UsePathStyle = true })
	if _, err := f.s3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("pub")}); err != nil {
		t.Fatal(err)
	}
	return f
}

func put(t *testing.T, st syncer.FileStore, key string, body []byte) {
	t.Helper()
	m := md5.Sum(body)
	if err := st.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)), syncer.FileInfo{MD5: hex.EncodeToString(m[:])}); err != nil {
		t.Fatal(err)
	}
}

// TestPublishedObjectsOtherToolsUnderstand: an object published through
// an s3:// store carries a Content-Type from its extension and its MD5
// where rclone reads it (md5chksum, base64) besides gapsync's own.
func TestPublishedObjectsOtherToolsUnderstand(t *testing.T) {
	is := is.New(t)
	f := newFake(t)
	st, err := storeurl.Open(context.Background(), "s3://pub/from-internet/?path_style=1&endpoint="+url.QueryEscape(f.url))
	is.NoErr(err)
	body := []byte("%PDF-1.7 a report\n")
	sum := md5.Sum(body)
	for key, want := range map[string]string{
		"reports/2026 年报.pdf": "application/pdf",
		"img/a.PNG":           "image/png",
		"notes.txt":           "text/plain; charset=utf-8",
		"data.no-such-ext":    "application/octet-stream",
		"README":              "application/octet-stream",
	} {
		put(t, st, key, body)
		out, err := f.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("pub"), Key: aws.String("from-internet/" + key)})
		is.NoErr(err)
		is.Equal(aws.ToString(out.ContentType), want)
		is.Equal(out.Metadata["md5chksum"], base64.StdEncoding.EncodeToString(sum[:])) // rclone's
		is.Equal(out.Metadata["gapsync-md5"], hex.EncodeToString(sum[:]))              // gapsync's
	}
}

// TestChecksumSetting: checksum=when_required leaves out the request
// checksums older Ceph and vendor stores refuse; the default sends them.
func TestChecksumSetting(t *testing.T) {
	is := is.New(t)
	f := newFake(t)
	for _, c := range []struct {
		query string
		sent  bool
	}{{"", true}, {"&checksum=when_supported", true}, {"&checksum=when_required", false}} {
		st, err := storeurl.Open(context.Background(), "s3://pub/?path_style=1&endpoint="+url.QueryEscape(f.url)+c.query)
		is.NoErr(err)
		f.mu.Lock()
		f.sum = nil
		f.mu.Unlock()
		put(t, st, "a.bin", []byte("abc"))
		f.mu.Lock()
		is.Equal(len(f.sum), 1)
		is.Equal(f.sum[0] != "", c.sent) // checksum headers sent or not
		f.mu.Unlock()
	}
	_, err := storeurl.Open(context.Background(), "s3://pub/?checksum=sometimes")
	is.True(err != nil && strings.Contains(err.Error(), "want when_supported (the default) or when_required"))
}

var run atomic.Int64

// TestConformanceS3 runs the file store conformance suite against a real
// S3-compatible server through an s3:// URL: set GAPSYNC_TEST_S3_URL to
// one (the test makes its bucket when missing) and the AWS credentials for it, e.g. for a
// MinIO on loopback (see the README):
//
//	GAPSYNC_TEST_S3_URL='s3://gapsync-test/?endpoint=http://127.0.0.1:9000&path_style=1' \
//	AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin \
//	go test -run TestConformanceS3 -v ./storage/storeurl
//
// Each subtest works under a prefix of its own (conformance/TIME-N/); the
// objects stay, for a look afterwards.
func TestConformanceS3(t *testing.T) {
	spec := os.Getenv("GAPSYNC_TEST_S3_URL")
	if spec == "" {
		t.Skip("GAPSYNC_TEST_S3_URL is not set: no real S3-compatible server to run the suite against (see the README for MinIO on loopback)")
	}
	u, err := url.Parse(spec)
	if err != nil || u.Scheme != "s3" {
		t.Fatalf("GAPSYNC_TEST_S3_URL %q: want s3://BUCKET/?endpoint=…", spec)
	}
	// Make the bucket when it is not there yet.
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(u.Query().Get("endpoint"))
		o.UsePathStyle = u.Query().Get("path_style") == "1"
	})
	if _, err := client.HeadBucket(context.Background(), &s3.HeadBucketInput{Bucket: aws.String(u.Host)}); err != nil {
		if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(u.Host)}); err != nil {
			t.Fatalf("bucket %s: %v", u.Host, err)
		}
	}
	stamp := time.Now().UTC().Format("20060102T150405")
	filestoretest.Run(t, filestoretest.Harness{
		New: func(t *testing.T) syncer.FileStore {
			v := *u
			v.Path = fmt.Sprintf("/conformance/%s-%d/", stamp, run.Add(1))
			st, err := storeurl.Open(context.Background(), v.String())
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		Features: filestoretest.Features{Checksums: true, Versions: true},
	})
}

// TestRcloneVerifies: rclone, given the store, agrees with the published
// objects' MD5 without downloading them, also for a multipart object
// whose ETag is no MD5 (rclone reads md5chksum then). Skips when rclone is
// not installed.
func TestRcloneVerifies(t *testing.T) {
	rclone, err := exec.LookPath("rclone")
	if err != nil {
		t.Skip("rclone is not installed (apt-get install rclone); the metadata it reads is checked by TestPublishedObjectsOtherToolsUnderstand")
	}
	is := is.New(t)
	f := newFake(t)
	st, err := storeurl.Open(context.Background(), "s3://pub/out/?path_style=1&endpoint="+url.QueryEscape(f.url))
	is.NoErr(err)
	local := t.TempDir()
	files := map[string][]byte{
		"small.txt":       []byte("small file\n"),
		"big/年报 2026.pdf": bytes.Repeat([]byte("0123456789abcdef"), 9<<16), // 9 MiB: a multipart upload
	}
	for key, body := range files {
		put(t, st, key, body)
		is.NoErr(os.MkdirAll(filepath.Dir(filepath.Join(local, key)), 0o755))
		is.NoErr(os.WriteFile(filepath.Join(local, key), body, 0o644))
	}
	// gofakes3 gives a multipart object the MD5 as its ETag; S3 does not.
	big := md5.Sum(files["big/年报 2026.pdf"])
	bigMD5 := hex.EncodeToString(big[:])
	f.multipartETag.Store(&bigMD5)
	out, err := f.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("pub"), Key: aws.String("out/big/年报 2026.pdf")})
	is.NoErr(err)
	is.Equal(aws.ToString(out.ETag), `"`+bigMD5+`-2"`)

	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "AWS_") && !strings.HasPrefix(e, "RCLONE_") { // no CA bundle or profile of this host
			env = append(env, e)
		}
	}
	env = append(env, "RCLONE_CONFIG_PUB_TYPE=s3", "RCLONE_CONFIG_PUB_PROVIDER=Other",
		"RCLONE_CONFIG_PUB_ENDPOINT="+f.url, "RCLONE_CONFIG_PUB_ACCESS_KEY_ID=AKIDTEST",
		"RCLONE_CONFIG_PUB_SECRET_ACCESS_KEY=secret", "RCLONE_CONFIG_PUB_FORCE_PATH_STYLE=true", "RCLONE_CONFIG=/dev/null")
	cmd := exec.Command(rclone, "md5sum", "pub:pub/out")
	cmd.Env = env
	sums, err := cmd.CombinedOutput()
	t.Logf("rclone md5sum:\n%s", sums)
	is.NoErr(err)
	for key, body := range files {
		m := md5.Sum(body)
		is.True(strings.Contains(string(sums), hex.EncodeToString(m[:])+"  "+key))
	}
	// rclone check compares by hash only (no download) and must find no
	// difference.
	cmd = exec.Command(rclone, "check", local, "pub:pub/out")
	cmd.Env = env
	check, err := cmd.CombinedOutput()
	t.Logf("rclone check:\n%s", check)
	is.NoErr(err)
	is.True(strings.Contains(string(check), "0 differences found"))
	is.True(!strings.Contains(string(check), "hashes could not be checked"))
}
