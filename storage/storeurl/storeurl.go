// Package storeurl opens a file store from one string, as the example
// mains take it in a flag:
//
//	dir:/srv/files                      a local directory (localstore)
//	s3://bucket/prefix/                 an S3 bucket, credentials and region from the
//	                                    usual AWS environment (s3store)
//	s3://bucket/?endpoint=http://minio:9000&path_style=1
//	                                    an S3-compatible store (MinIO, Ceph)
//	s3://bucket/?endpoint=http://ceph:7480&path_style=1&checksum=when_required
//	                                    an older Ceph or vendor store that refuses
//	                                    the SDK's default request checksums
//
// The query of an s3:// URL takes endpoint (the store's base URL), region
// (default the AWS environment's, else us-east-1), path_style=1 (bucket in
// the path rather than the host name, as MinIO and Ceph want), and
// checksum: when_supported (the default: a CRC32 with every upload, checked
// by the store) or when_required (only where an operation demands one, for
// stores that refuse the newer checksum headers). Any other key is an
// error, so a typo does not pass silently.
package storeurl

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"

	"github.com/gapsync/gapsync/storage/localstore"
	"github.com/gapsync/gapsync/storage/s3store"
	"github.com/gapsync/gapsync/syncer"
)

// Open opens the store spec names.
func Open(ctx context.Context, spec string) (syncer.FileStore, error) {
	if dir, ok := strings.CutPrefix(spec, "dir:"); ok {
		return localstore.New(dir, nil)
	}
	u, err := url.Parse(spec)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("storeurl: %q: want dir:PATH or s3://BUCKET/PREFIX", spec)
	}
	// The SDK's own log lines (IMDS fallbacks and the like) would print
	// around the main's logger; its errors carry what matters.
	cfg, err := config.LoadDefaultConfig(ctx, config.WithLogger(logging.Nop{}))
	if err != nil {
		return nil, fmt.Errorf("storeurl: AWS configuration: %w", err)
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "path_style", "checksum":
		default:
			return nil, fmt.Errorf("storeurl: %q: unknown setting %q; an s3:// URL takes endpoint, region, path_style and checksum", spec, k)
		}
	}
	var reqSum aws.RequestChecksumCalculation
	var respSum aws.ResponseChecksumValidation
	switch c := q.Get("checksum"); c {
	case "", "when_supported":
		reqSum, respSum = aws.RequestChecksumCalculationWhenSupported, aws.ResponseChecksumValidationWhenSupported
	case "when_required":
		reqSum, respSum = aws.RequestChecksumCalculationWhenRequired, aws.ResponseChecksumValidationWhenRequired
	default:
		return nil, fmt.Errorf("storeurl: %q: checksum=%s: want when_supported (the default) or when_required (older Ceph and vendor stores)", spec, c)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if r := q.Get("region"); r != "" {
		cfg.Region = r
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if e := q.Get("endpoint"); e != "" {
			o.BaseEndpoint = aws.String(e)
		}
		o.UsePathStyle = q.Get("path_style") == "1"
		o.RequestChecksumCalculation, o.ResponseChecksumValidation = reqSum, respSum
	})
	return s3store.New(client, u.Host, &s3store.Options{Prefix: strings.TrimPrefix(u.Path, "/")})
}
