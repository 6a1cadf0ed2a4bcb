package service

import (
	"flag"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/syncer"
	"github.com/gapsync/gapsync/throttle"
)

// ThrottleFlags are a main's throttle settings: rows and bytes per second
// overall and per table, file bandwidth, and the busy limits of the
// databases it probes. Every value is checked when it is set, so a
// negative or unparseable one fails at start (from the command line, the
// environment or the config file alike) with the form it wants. The zero
// value of every setting means no limit.
type ThrottleFlags struct {
	Rows       Rate
	Bytes      Bytes // per second
	Tables     TableLimits
	Files      Bytes // per second
	MaxRunning Count
	MaxLatency Wait
	Interval   Wait
}

// Register adds -max-rows-per-second, -max-bytes-per-second, -table-limit
// (repeatable: list it among Load's repeatable flags), and RegisterFiles'
// flags to fs.
func (f *ThrottleFlags) Register(fs *flag.FlagSet) {
	fs.Var(&f.Rows, "max-rows-per-second", "most rows copied per second, all tables and both directions together (0: no limit)")
	fs.Var(&f.Bytes, "max-bytes-per-second", "most row payload bytes copied per second, all tables together, e.g. 8MiB (0: no limit)")
	fs.Var(&f.Tables, "table-limit", "limits of one table on top of the overall ones: `NAME:ROWS[:BYTES]` per second, e.g. audit_log:2000:1MiB (repeatable)")
	f.RegisterFiles(fs)
}

// RegisterFiles adds -file-bandwidth and RegisterBusy's flags, for a main
// that moves files but no rows (the intranet worker).
func (f *ThrottleFlags) RegisterFiles(fs *flag.FlagSet) {
	fs.Var(&f.Files, "file-bandwidth", "most file chunk bytes moved per second, all files together, e.g. 10MiB (0: no limit)")
	f.RegisterBusy(fs)
}

// RegisterBusy adds only the busy pause's flags, -max-threads-running,
// -max-latency and -throttle-interval, for a main that copies nothing
// itself (the gateway).
func (f *ThrottleFlags) RegisterBusy(fs *flag.FlagSet) {
	fs.Var(&f.MaxRunning, "max-threads-running", "pause copying while the database runs more statements than this at once (MySQL/MariaDB Threads_running,\nPostgreSQL active backends; 0: not checked)")
	fs.Var(&f.MaxLatency, "max-latency", "pause copying while a trivial statement on the database takes longer than this, e.g. 200ms (0: not checked)")
	if f.Interval == 0 {
		f.Interval = Wait(time.Second)
	}
	fs.Var(&f.Interval, "throttle-interval", "how often a paused copy checks the database's load again")
}

// Throttler returns the throttle the settings describe, probing the
// databases named in probes, or nil when no setting limits anything.
// rec receives its metrics when it has them (a *metrics.Metrics, also
// behind Observe's recorder).
func (f *ThrottleFlags) Throttler(probes map[string]throttle.Probe, rec syncer.Recorder, log *slog.Logger) (*throttle.Throttler, error) {
	if f.Rows == 0 && f.Bytes == 0 && len(f.Tables) == 0 && f.Files == 0 && f.MaxRunning == 0 && f.MaxLatency == 0 {
		return nil, nil
	}
	o := &throttle.Options{
		Overall:    throttle.Limits{Rows: float64(f.Rows), Bytes: float64(f.Bytes)},
		Tables:     map[string]throttle.Limits(f.Tables),
		FileBytes:  float64(f.Files),
		MaxRunning: int64(f.MaxRunning),
		MaxLatency: time.Duration(f.MaxLatency),
		Interval:   time.Duration(f.Interval),
		Logger:     log,
	}
	if f.MaxRunning != 0 || f.MaxLatency != 0 {
		o.Probes = probes
	}
	o.Recorder = throttleRecorder(rec)
	return throttle.New(o)
}

// throttleRecorder finds the throttle metrics in rec, which may wrap
// them.
func throttleRecorder(rec syncer.Recorder) throttle.Recorder {
	for rec != nil {
		if r, ok := rec.(throttle.Recorder); ok {
			return r
		}
		c, ok := rec.(*CycleClock)
		if !ok {
			return nil
		}
		rec = c.Recorder
	}
	return nil
}

// Rate is a flag.Value for a number per second: 0 (no limit) or more.
type Rate float64

func (r *Rate) String() string { return strconv.FormatFloat(float64(*r), 'f', -1, 64) }

// Set parses a rate, refusing a negative or non-finite one.
func (r *Rate) Set(s string) error {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("rate %q: want 0 (no limit) or a positive number per second, e.g. 20000", s)
	}
	*r = Rate(v)
	return nil
}

// Count is a flag.Value for a whole number, 0 (not checked) or more.
type Count int64

func (c *Count) String() string { return strconv.FormatInt(int64(*c), 10) }

// Set parses a count, refusing a negative one.
func (c *Count) Set(s string) error {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("count %q: want 0 (not checked) or a positive whole number, e.g. 25", s)
	}
	*c = Count(v)
	return nil
}

// Wait is a flag.Value for a duration of 0 or more.
type Wait time.Duration

func (w *Wait) String() string { return time.Duration(*w).String() }

// Set parses a duration, refusing a negative one.
func (w *Wait) Set(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || v < 0 {
		return fmt.Errorf("duration %q: want 0 or a positive duration with its unit, e.g. 200ms or 2s", s)
	}
	*w = Wait(v)
	return nil
}

// TableLimits is a repeatable flag.Value of per-table limits, each
// NAME:ROWS[:BYTES] per second (ROWS may be 0 for a bytes limit alone).
type TableLimits map[string]throttle.Limits

func (t *TableLimits) String() string {
	if t == nil || len(*t) == 0 {
		return ""
	}
	var parts []string
	for name, l := range *t {
		parts = append(parts, fmt.Sprintf("%s:%v:%s", name, l.Rows, FormatBytes(int64(l.Bytes))))
	}
	return strings.Join(parts, ",")
}

// Set adds one table's limits, refusing a name that is no plain
// identifier, a negative or unparseable number, and a table given twice.
func (t *TableLimits) Set(s string) error {
	const form = "want NAME:ROWS[:BYTES] per second, e.g. audit_log:2000 or audit_log:0:1MiB"
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) < 2 || len(parts) > 3 {
		return fmt.Errorf("table limit %q: %s", s, form)
	}
	name := parts[0]
	if err := gapsync.ValidIdentifier(name); err != nil {
		return fmt.Errorf("table limit %q: %w; %s", s, err, form)
	}
	var rows Rate
	if err := rows.Set(parts[1]); err != nil {
		return fmt.Errorf("table limit %q: rows %w; %s", s, err, form)
	}
	var bytes int64
	if len(parts) == 3 {
		n, err := ParseBytes(parts[2])
		if err != nil {
			return fmt.Errorf("table limit %q: bytes %w; %s", s, err, form)
		}
		bytes = n
	}
	if *t == nil {
		*t = TableLimits{}
	}
	if _, dup := (*t)[name]; dup {
		return fmt.Errorf("table limit %q: %s has limits already; give each table once", s, name)
	}
	(*t)[name] = throttle.Limits{Rows: float64(rows), Bytes: float64(bytes)}
	return nil
}
