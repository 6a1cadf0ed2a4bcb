package service_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/matryer/is"

	"github.com/gapsync/gapsync/service"
	"github.com/gapsync/gapsync/throttle"
)

func throttleFlags() (*flag.FlagSet, *service.ThrottleFlags) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	var f service.ThrottleFlags
	f.Register(fs)
	return fs, &f
}

func TestThrottleFlagsFromConfig(t *testing.T) {
	is := is.New(t)
	file := filepath.Join(t.TempDir(), "gapsync.yaml")
	is.NoErr(os.WriteFile(file, []byte("max-rows-per-second: 20000\nmax-bytes-per-second: 8MiB\n"+
		"table-limit:\n  - audit_log:2000\n  - docs:0:1MiB\nfile-bandwidth: 10MiB\nmax-threads-running: 25\nmax-latency: 200ms\n"), 0o600))
	fs, f := throttleFlags()
	is.NoErr(service.Load(fs, []string{"-config", file}, "GAPSYNC_", "table-limit"))
	is.Equal(float64(f.Rows), 20000.0)
	is.Equal(int64(f.Bytes), int64(8<<20))
	is.Equal(f.Tables["audit_log"], throttle.Limits{Rows: 2000})
	is.Equal(f.Tables["docs"], throttle.Limits{Bytes: 1 << 20})
	is.Equal(int64(f.Files), int64(10<<20))
	is.Equal(int64(f.MaxRunning), int64(25))
	is.Equal(time.Duration(f.MaxLatency), 200*time.Millisecond)
	is.Equal(time.Duration(f.Interval), time.Second) // the default
	th, err := f.Throttler(nil, nil, nil)
	is.NoErr(err)
	is.True(th != nil)
}

func TestThrottleFlagsRefuseNonsense(t *testing.T) {
	is := is.New(t)
	for _, c := range []struct{ args, want string }{
		{"-max-rows-per-second -5", "want 0 (no limit) or a positive number per second"},
		{"-max-rows-per-second fast", "want 0 (no limit) or a positive number per second"},
		{"-max-rows-per-second NaN", "want 0 (no limit) or a positive number per second"},
		{"-max-bytes-per-second -1MiB", "want a whole number of bytes"},
		{"-file-bandwidth lots", "want a whole number of bytes"},
		{"-max-threads-running -1", "want 0 (not checked) or a positive whole number"},
		{"-max-threads-running 2.5", "want 0 (not checked) or a positive whole number"},
		{"-max-latency -1s", "want 0 or a positive duration with its unit"},
		{"-max-latency 200", "want 0 or a positive duration with its unit"},
		{"-throttle-interval soon", "want 0 or a positive duration"},
		{"-table-limit audit_log", "want NAME:ROWS[:BYTES]"},
		{"-table-limit audit_log:-3", "want NAME:ROWS[:BYTES]"},
		{"-table-limit audit_log:10:big", "want NAME:ROWS[:BYTES]"},
		{"-table-limit a;b:10", "want NAME:ROWS[:BYTES]"},
		{"-table-limit t:1 -table-limit t:2", "give each table once"},
	} {
		fs, _ := throttleFlags()
		err := service.Load(fs, strings.Fields(c.args), "GAPSYNC_TEST_THROTTLE_", "table-limit")
		is.True(err != nil)
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.args, err, c.want)
		}
	}
	// The same from a config file.
	file := filepath.Join(t.TempDir(), "bad.yaml")
	is.NoErr(os.WriteFile(file, []byte("max-rows-per-second: -20000\n"), 0o600))
	fs, _ := throttleFlags()
	err := service.Load(fs, []string{"-config", file}, "GAPSYNC_TEST_THROTTLE_", "table-limit")
	is.True(err != nil && strings.Contains(err.Error(), "max-rows-per-second") && strings.Contains(err.Error(), "positive number"))
}

func TestNoThrottleSettingsNoThrottler(t *testing.T) {
	is := is.New(t)
	fs, f := throttleFlags()
	is.NoErr(fs.Parse(nil))
	th, err := f.Throttler(nil, nil, nil)
	is.NoErr(err)
	is.True(th == nil)
}
