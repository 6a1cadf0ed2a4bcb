package service_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	stdlog "log"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/service"
)

func TestEnvFillsFlagsTheCommandLineLeftOut(t *testing.T) {
	is := is.New(t)
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	strip := fs.String("strip-prefix", "", "")
	db := fs.String("db", "default", "")
	var tables []string
	fs.Func("table", "", func(s string) error { tables = append(tables, s); return nil })
	size := service.Bytes(1)
	fs.Var(&size, "chunk-size", "")
	t.Setenv("GAPSYNC_STRIP_PREFIX", "/upload/")
	t.Setenv("GAPSYNC_DB", "from-env")
	t.Setenv("GAPSYNC_TABLE", "a:id:ts\n b:id:ts:both")
	t.Setenv("GAPSYNC_CHUNK_SIZE", "2MiB")
	is.NoErr(fs.Parse([]string{"-db", "from-flag"}))
	is.NoErr(service.Env(fs, "GAPSYNC_", "table"))
	is.Equal(*strip, "/upload/")
	is.Equal(*db, "from-flag") // the command line wins
	is.Equal(tables, []string{"a:id:ts", "b:id:ts:both"})
	is.Equal(int64(size), int64(2<<20))

	t.Setenv("GAPSYNC_CHUNK_SIZE", "lots")
	fs2 := flag.NewFlagSet("y", flag.ContinueOnError)
	fs2.Var(&size, "chunk-size", "")
	is.NoErr(fs2.Parse(nil))
	err := service.Env(fs2, "GAPSYNC_")
	is.True(err != nil)
	is.Equal(err.Error()[:len("GAPSYNC_CHUNK_SIZE (for -chunk-size)")], "GAPSYNC_CHUNK_SIZE (for -chunk-size)")
}

func TestBytes(t *testing.T) {
	is := is.New(t)
	for in, want := range map[string]int64{"0": 0, "4096": 4096, "96MiB": 96 << 20, "1 gib": 1 << 30, "5MB": 5_000_000, "7KiB": 7 << 10} {
		n, err := service.ParseBytes(in)
		is.NoErr(err)
		is.Equal(n, want)
	}
	for _, bad := range []string{"", "-1", "1.5MiB", "MiB", "99999999999TiB"} {
		_, err := service.ParseBytes(bad)
		is.True(err != nil)
	}
	is.Equal(service.FormatBytes(96<<20), "96MiB")
	is.Equal(service.FormatBytes(1<<30), "1GiB")
	is.Equal(service.FormatBytes(1000), "1000")
}

func TestRetryWaitsThenSucceeds(t *testing.T) {
	is := is.New(t)
	n := 0
	err := service.Retry(context.Background(), nil, "connect", &service.RetryOptions{First: time.Millisecond}, func(context.Context) error {
		if n++; n < 4 {
			return errors.New("connection refused")
		}
		return nil
	})
	is.NoErr(err)
	is.Equal(n, 4)
}

func TestRetryStopsOnPermanentErrorsAndCancel(t *testing.T) {
	is := is.New(t)
	n := 0
	err := service.Retry(context.Background(), nil, "configure", &service.RetryOptions{First: time.Millisecond}, func(context.Context) error {
		n++
		return fmt.Errorf("table x: %w", gapsync.ErrBadIdentifier)
	})
	is.True(errors.Is(err, gapsync.ErrBadIdentifier))
	is.Equal(n, 1)                                                                          // a typo fails fast
	is.True(service.Permanent(fmt.Errorf("configure t: %w", gapsync.ErrUnsupportedCursor))) // so does a VARCHAR cursor

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = service.Retry(ctx, nil, "connect", &service.RetryOptions{First: 10 * time.Millisecond}, func(context.Context) error {
		return errors.New("connection refused")
	})
	is.True(errors.Is(err, context.DeadlineExceeded))
	is.True(err != nil && len(err.Error()) > 0)
}

func TestLoggerRoutesLibraryLines(t *testing.T) {
	is := is.New(t)
	var buf strings.Builder
	l := service.LogFlags{Format: "json", Level: "warn"}
	log, err := l.Logger(&buf, "external")
	is.NoErr(err)
	defer slog.SetDefault(slog.New(slog.DiscardHandler))
	log.Info("not shown")
	log.Warn("shown", "k", 1)
	stdlog.Printf("can't discover MySQL version") // a library's stray line
	out := buf.String()
	is.True(!strings.Contains(out, "not shown"))
	is.True(strings.Contains(out, `"msg":"shown"`) && strings.Contains(out, `"zone":"external"`))
	// The standard logger's lines arrive through the handler at Info, which
	// this level filters; at info they are JSON too.
	buf.Reset()
	l.Level = "info"
	_, err = l.Logger(&buf, "external")
	is.NoErr(err)
	stdlog.Printf("can't discover MySQL version")
	is.True(strings.HasPrefix(buf.String(), "{") && strings.Contains(buf.String(), "discover MySQL version"))

	_, err = (&service.LogFlags{Format: "xml"}).Logger(&buf, "x")
	is.True(err != nil)
	_, err = (&service.LogFlags{Level: "loud"}).Logger(&buf, "x")
	is.True(err != nil)
}
