package s3store_test

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gapsync/gapsync/storage/s3store"
)

// A bucket as a file store, through a client of the caller's. For MinIO
// or Ceph, set the endpoint and path-style addressing; for a store that
// refuses the SDK's default request checksums, ask for them only when
// required.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		panic(err)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://minio.intranet:9000")
		o.UsePathStyle = true
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	st, err := s3store.New(client, "published", &s3store.Options{Prefix: "gapsync/", PartSize: 16 << 20})
	if err != nil {
		panic(err)
	}
	if err := st.Ping(ctx); err != nil { // endpoint, bucket and credentials, once at start
		fmt.Println("store:", err)
	}
}

// Published objects get a media type from their key.
func ExampleContentType() {
	fmt.Println(s3store.ContentType("from-internet/2026 年报.PDF"))
	fmt.Println(s3store.ContentType("from-internet/data.unknown-ext"))
	// Output:
	// application/pdf
	// application/octet-stream
}
