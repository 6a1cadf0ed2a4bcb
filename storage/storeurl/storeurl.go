// Package storeurl opens a file store from one string, as the example
// mains take it in a flag:
//
//	dir:/srv/files                      a local directory (localstore)
//	s3://bucket/prefix/                 an S3 bucket, credentials and region from the
//	                                    usual AWS environment (s3store)
//	s3://bucket/?endpoint=http://minio:9000&path_style=1
//	                                    an S3-compatible store (MinIO, Ceph)
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
	})
	return s3store.New(client, u.Host, &s3store.Options{Prefix: strings.TrimPrefix(u.Path, "/")})
}
