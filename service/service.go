// Package service holds the small pieces that every long-running gapsync
// main needs and that a host project would otherwise copy three times:
// flags that also come from the environment, and startup steps that wait
// for a database that is still coming up instead of exiting.
//
// # Flags from the environment
//
// [Env] fills every flag that was not given on the command line from an
// environment variable named after it: with the prefix "GAPSYNC_", the flag
// -strip-prefix is read from GAPSYNC_STRIP_PREFIX. A flag given on the
// command line always wins. A repeatable flag (one that may be given
// several times, like -table) takes a list from its variable, one item a
// line or separated by spaces.
//
// # Startup that waits
//
// [Retry] runs a startup step (open, migrate, configure) until it succeeds
// or the context ends, with a growing pause, logging at Warn what it waits
// for. Errors that cannot go away by waiting (a bad identifier, a column
// that is not there) are returned at once, so a typo still fails fast.
// Before that, [CheckDSN] reads the database setting itself and says in one
// line what is wrong with it (a URL-style MySQL DSN, no database, an SQLite
// path in a missing directory); [FileFlags.Options] reaches an S3 store
// once and says which of endpoint, bucket or credentials is wrong.
//
// # TLS
//
// [TLSFiles] holds the certificate files of one end of the gateway link:
// the gateway's certificate and the authority whose client certificates it
// requires (mutual TLS), or the coordinator's client certificate and the
// authority that signed the gateway's. It reads them again on SIGHUP and
// when they change, keeps the loaded ones when a new pair does not load,
// logs refused clients with what to do, and answers a plain HTTP request
// to the TLS port with a 400 that says to use https://.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/storage"
)

// EnvName is the environment variable that Env reads for the flag name:
// prefix, then the name in upper case with '-' and '.' as '_'.
func EnvName(prefix, name string) string {
	return prefix + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// Env sets every flag of fs that the command line did not set from its
// environment variable (see EnvName), when that variable is set and not
// empty. Flags named in repeatable take a list: the variable's value is
// split on white space and each item is set in turn (a -filter, which
// holds spaces, on line ends). Call it after
// fs.Parse. The error names the variable and the flag.
// lineFlags are the repeatable flags whose values hold spaces: their
// environment variable gives one value a line.
var lineFlags = map[string]bool{"filter": true}

func Env(fs *flag.FlagSet, prefix string, repeatable ...string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	rep := map[string]bool{}
	for _, r := range repeatable {
		rep[r] = true
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		name := EnvName(prefix, f.Name)
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return
		}
		items := []string{v}
		switch {
		case rep[f.Name] && lineFlags[f.Name]:
			items = nil
			for _, l := range strings.Split(v, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					items = append(items, l)
				}
			}
		case rep[f.Name]:
			items = strings.Fields(v)
		}
		for _, it := range items {
			if err := fs.Set(f.Name, it); err != nil {
				errs = append(errs, fmt.Errorf("%s (for -%s): %w", name, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// EnvHelp returns lines for a usage text that list the environment
// variable of every flag of fs.
func EnvHelp(fs *flag.FlagSet, prefix string) string {
	var b strings.Builder
	b.WriteString("\nEvery flag may also come from the environment (the command line wins):\n")
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(&b, "  %-28s -%s\n", EnvName(prefix, f.Name), f.Name)
	})
	return b.String()
}

// RetryOptions tune Retry. Nil gives the defaults.
type RetryOptions struct {
	// First is the first pause; each later pause doubles, up to Max.
	// Defaults 1 s and 30 s.
	First, Max time.Duration
	// Permanent reports errors that waiting cannot mend; Retry returns
	// them at once. Default: Permanent (the package function).
	Permanent func(error) bool
}

// Permanent reports whether err is a configuration or input error that no
// wait mends: an identifier that is not valid, a column or table that is
// not there, malformed input, a path or URL that is refused, a cursor
// column of a type that cannot carry every change, a statement the
// isolation device does not pass (metadata tables to create by hand).
func Permanent(err error) bool {
	if errors.Is(err, storage.ErrStatementKind) {
		return true
	}
	for _, s := range []error{gapsync.ErrBadIdentifier, gapsync.ErrUnknownColumn, gapsync.ErrUnknownTable,
		gapsync.ErrMalformed, gapsync.ErrBadPath, gapsync.ErrForbiddenURL, gapsync.ErrUnsupportedCursor} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// Retry calls step until it returns nil, a permanent error, or ctx ends
// (then it returns the last error joined with ctx's). Between attempts it
// logs at Warn that it waits for what, with the error and the pause.
func Retry(ctx context.Context, log *slog.Logger, what string, o *RetryOptions, step func(context.Context) error) error {
	var opt RetryOptions
	if o != nil {
		opt = *o
	}
	if opt.First <= 0 {
		opt.First = time.Second
	}
	if opt.Max <= 0 {
		opt.Max = 30 * time.Second
	}
	if opt.Permanent == nil {
		opt.Permanent = Permanent
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pause := opt.First
	for attempt := 1; ; attempt++ {
		err := step(ctx)
		if err == nil {
			if attempt > 1 {
				log.Info("ready after waiting", "step", what, "attempts", attempt)
			}
			return nil
		}
		if opt.Permanent(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, errors.Join(err, ctx.Err()))
		}
		log.Warn("waiting before retrying a startup step", "step", what, "attempt", attempt, "pause", pause, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, errors.Join(err, ctx.Err()))
		case <-time.After(pause):
		}
		pause = min(2*pause, opt.Max)
	}
}

// OpenDB opens the database at dsn and prepares it, waiting (see Retry)
// while it cannot be reached: it creates the sync metadata tables,
// enables tables in sync_config and, with tombstones, installs their
// delete triggers. A malformed dsn fails at once with what CheckDSN says,
// naming it -db. The caller closes the database.
func OpenDB(ctx context.Context, log *slog.Logger, dsn string, o *storage.Options, tables []gapsync.Table, tombstones bool) (*storage.DB, error) {
	if err := CheckDSN("-db", dsn); err != nil {
		return nil, err
	}
	var db *storage.DB
	err := Retry(ctx, log, "prepare the database", nil, func(ctx context.Context) error {
		if db == nil {
			d, err := storage.Open(dsn, o)
			if err != nil {
				return err
			}
			db = d
		}
		if err := db.Migrate(ctx); err != nil {
			return err
		}
		for _, t := range tables {
			if err := db.Configure(ctx, t); err != nil {
				return err
			}
			if tombstones && !gapsync.IsPattern(t.Name) {
				if err := db.InstallTombstones(ctx, t); err != nil {
					return fmt.Errorf("install tombstones for %s: %w", t.Name, err)
				}
			}
		}
		return installPatternTombstones(ctx, db, tables, tombstones)
	})
	if err != nil && db != nil {
		db.Close()
		db = nil
	}
	return db, err
}

// installPatternTombstones installs the delete triggers of every table a
// pattern among tables stands for now (a table created later gets them
// at the next start).
func installPatternTombstones(ctx context.Context, db *storage.DB, tables []gapsync.Table, tombstones bool) error {
	var pats []string
	for _, t := range tables {
		if gapsync.IsPattern(t.Name) {
			pats = append(pats, t.Name)
		}
	}
	if !tombstones || len(pats) == 0 {
		return nil
	}
	all, err := db.Tables(ctx, "")
	if err != nil {
		return err
	}
	for _, t := range all {
		for _, p := range pats {
			if gapsync.MatchTable(p, t.Name) {
				if err := db.InstallTombstones(ctx, t); err != nil {
					return fmt.Errorf("install tombstones for %s (pattern %s): %w", t.Name, p, err)
				}
				break
			}
		}
	}
	return nil
}
