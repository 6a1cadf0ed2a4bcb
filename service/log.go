package service

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// LogFlags are a main's -log-format and -log-level.
type LogFlags struct {
	Format string // "text" (default) or "json"
	Level  string // "debug", "info" (default), "warn" or "error"
}

// Register adds -log-format and -log-level to fs.
func (l *LogFlags) Register(fs *flag.FlagSet) {
	if l.Format == "" {
		l.Format = "text"
	}
	if l.Level == "" {
		l.Level = "info"
	}
	fs.StringVar(&l.Format, "log-format", l.Format, "log format: text or json")
	fs.StringVar(&l.Level, "log-level", l.Level, "least level logged: debug, info, warn or error")
}

// Logger returns a logger that writes to w in the chosen format and level,
// with zone on every line, and makes it the process's default: lines that
// libraries print through the standard log package (a driver's version
// probe, an http.Server without an ErrorLog) and the MySQL driver's own
// complaints go through the same handler instead of around it.
func (l *LogFlags) Logger(w io.Writer, zone string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToUpper(l.Level))); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", l.Level)
	}
	o := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch strings.ToLower(l.Format) {
	case "", "text":
		h = slog.NewTextHandler(w, o)
	case "json":
		h = slog.NewJSONHandler(w, o)
	default:
		return nil, fmt.Errorf("-log-format %q: want text or json", l.Format)
	}
	log := slog.New(h).With("zone", zone)
	slog.SetDefault(log)
	mysql.SetLogger(slog.NewLogLogger(log.Handler(), slog.LevelWarn))
	return log, nil
}
