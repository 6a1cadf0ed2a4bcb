package service

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage/httpstore"
	"github.com/gapsync/gapsync/storage/storeurl"
	"github.com/gapsync/gapsync/syncer"
)

// Bytes is a flag.Value for a size: a whole number of bytes, or one with a
// unit (KiB, MiB, GiB, TiB, or KB, MB, GB, TB in powers of ten; case does
// not matter). It prints in the largest binary unit that divides it.
type Bytes int64

var units = []struct {
	name string
	n    int64
}{
	{"tib", 1 << 40}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10},
	{"tb", 1e12}, {"gb", 1e9}, {"mb", 1e6}, {"kb", 1e3}, {"b", 1},
}

// ParseBytes reads a size as Bytes.Set does.
func ParseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mul := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(t, u.name); ok {
			t, mul = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || (mul > 1 && n > (1<<62)/mul) {
		return 0, fmt.Errorf("size %q: want a whole number of bytes, optionally with KiB, MiB, GiB (or KB, MB, GB)", s)
	}
	return n * mul, nil
}

// FormatBytes writes n in the largest binary unit that divides it.
func FormatBytes(n int64) string {
	for _, u := range units[:4] {
		if n != 0 && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + strings.ToUpper(u.name[:1]) + u.name[1:2] + "B"
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b *Bytes) String() string { return FormatBytes(int64(*b)) }

// Set parses a size.
func (b *Bytes) Set(s string) error {
	n, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = Bytes(n)
	return nil
}

// SetMemoryLimit sets the Go runtime's soft memory limit to n bytes, unless
// GOMEMLIMIT is set in the environment, which then wins; n <= 0 sets none.
// It returns the limit in force.
func SetMemoryLimit(n int64) int64 {
	if os.Getenv("GOMEMLIMIT") != "" || n <= 0 {
		return debug.SetMemoryLimit(-1)
	}
	debug.SetMemoryLimit(n)
	return n
}

// FileFlags are the flags of a zone main's file flow: its store, how
// references in its rows become store keys, and which URLs it may fetch.
// Register them, parse, then call Options.
type FileFlags struct {
	Store       string
	StripPrefix string
	RefPrefix   string
	KeyPrefix   string
	URLHosts    string
	URLAddrs    string
	ChunkSize   Bytes
	Retention   time.Duration
	Digest      string
}

// Register adds the file flags to fs; storeHelp describes -store for this
// zone.
func (f *FileFlags) Register(fs *flag.FlagSet, storeHelp string) {
	fs.StringVar(&f.Store, "store", f.Store, storeHelp+": dir:PATH or s3://BUCKET/PREFIX[?endpoint=URL&path_style=1&region=R&checksum=when_required] (empty: rows only)")
	fs.StringVar(&f.StripPrefix, "strip-prefix", f.StripPrefix, `removed from path references before they are store keys, e.g. "/upload/" for rows that hold "/upload/2026/a.pdf" for the key "2026/a.pdf"`)
	fs.StringVar(&f.RefPrefix, "ref-prefix", f.RefPrefix, `put before a published key to make the reference rows here hold (often the same as -strip-prefix)`)
	fs.StringVar(&f.KeyPrefix, "key-prefix", f.KeyPrefix, `where the other zone's files are published in -store (default "from-internet/" or "from-intranet/")`)
	fs.StringVar(&f.URLHosts, "url-allow", f.URLHosts, "comma-separated hosts (host or host:port) whose http(s) URLs in rows may be fetched (empty: URL references are refused)")
	fs.StringVar(&f.URLAddrs, "url-allow-addr", f.URLAddrs, "comma-separated address prefixes (10.1.0.0/16) that allowed URL hosts may resolve to although internal (an intranet file server)")
	if f.ChunkSize == 0 {
		f.ChunkSize = 4 << 20
	}
	fs.Var(&f.ChunkSize, "chunk-size", "size of the pieces files travel in; keep it under the databases' max_allowed_packet")
	if f.Retention == 0 {
		f.Retention = 24 * time.Hour
	}
	fs.DurationVar(&f.Retention, "file-retention", f.Retention, "how long a published file's chunks stay in the database")
	fs.StringVar(&f.Digest, "file-digest", f.Digest, DigestHelp)
}

// DigestHelp describes -file-digest, which the gateway main takes too.
const DigestHelp = `"sm3": file records carry an SM3 digest beside MD5 and SHA-256, verified when a file is published; set it alike on the internet, external and intranet mains (a difference is refused when a file is offered)`

// Options opens the store and the URL store and returns the file options,
// or nil when no -store was given. An S3 store is reached once (a
// HeadBucket), so that a wrong endpoint, bucket or credentials fails here
// with one line saying which. Progress and the rest of the tuning
// stay the caller's to set.
func (f *FileFlags) Options(ctx context.Context) (*syncer.FileOptions, error) {
	if f.Store == "" {
		if f.URLHosts != "" {
			return nil, fmt.Errorf("-url-allow needs -store: fetched files are published to the far zone's store and rows here point at this zone's")
		}
		return nil, nil
	}
	st, err := storeurl.Open(ctx, f.Store)
	if err != nil {
		return nil, fmt.Errorf("-store: %w", err)
	}
	if p, ok := st.(interface{ Ping(context.Context) error }); ok {
		pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := p.Ping(pctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("-store %s: %v; want s3://BUCKET/PREFIX[?endpoint=http://HOST:9000&path_style=1&region=R], with the endpoint reachable from here", f.Store, err)
		}
	}
	o := &syncer.FileOptions{Store: st, StripPrefix: f.StripPrefix, RefPrefix: f.RefPrefix, KeyPrefix: f.KeyPrefix,
		ChunkSize: int64(f.ChunkSize), Retention: f.Retention, Digest: f.Digest}
	if hosts := gapsync.SplitList(f.URLHosts); len(hosts) > 0 {
		var addrs []netip.Prefix
		for _, a := range gapsync.SplitList(f.URLAddrs) {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("-url-allow-addr %q: want an address prefix like 10.1.0.0/16: %w", a, err)
			}
			addrs = append(addrs, p)
		}
		us, err := httpstore.New(&httpstore.Options{AllowHosts: hosts, AllowAddrs: addrs})
		if err != nil {
			return nil, err
		}
		o.URLStore = us
	} else if f.URLAddrs != "" {
		return nil, fmt.Errorf("-url-allow-addr needs -url-allow: name the hosts first")
	}
	return o, nil
}
