package gapsync

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Checkpoint is the position of a window in progress: how far one table's
// run in one direction got through its window, page by page. The
// coordinator keeps it on the internet side after every page whose apply
// was acknowledged, so a run cut anywhere (the process killed, the gateway
// gone) goes on at the next run from the page after it, with the same
// window bounds. A window that ends successfully leaves no checkpoint.
type Checkpoint struct {
	Table     string
	Direction Direction
	// Window is the window in progress; the run that goes on from the
	// checkpoint reads the same one.
	Window Window
	// Config is Table.ScanKey of the table's configuration when the window
	// began: a checkpoint of a table configured differently since is not
	// used.
	Config string
	// After is the page reader's position after the last applied page
	// (opaque: see syncer.IsolationReader.ReadPage).
	After []byte
	// Rows and Batches count what was read and applied through After, over
	// every run of the window.
	Rows    int64
	Batches int
	// Left estimates the rows of the window after After, when it was
	// counted (the count stops at a cap); -1 when not known.
	Left int64
	// RunID is the run that began the window.
	RunID     string
	StartedAt time.Time
	UpdatedAt time.Time
}

// MaxCheckpointPosition bounds Checkpoint.After: a position is the order
// values of one row (the cursor and the key), far below it.
const MaxCheckpointPosition = 64 << 10

// Validate checks what a stored checkpoint holds before it is used: it is
// read from a database that an operator may edit. A failure wraps
// ErrMalformed.
func (c Checkpoint) Validate() error {
	switch {
	case ValidIdentifier(c.Table) != nil:
		return fmt.Errorf("%w: checkpoint table %q", ErrMalformed, c.Table)
	case c.Direction != Push && c.Direction != Pull:
		return fmt.Errorf("%w: checkpoint of %s: direction %q", ErrMalformed, c.Table, c.Direction)
	case c.Window.To == "" || !ValidBound(c.Window.From) || !ValidBound(c.Window.To) || !c.Window.Ordered():
		return fmt.Errorf("%w: checkpoint of %s: window %q..%q", ErrMalformed, c.Table, c.Window.From, c.Window.To)
	case len(c.After) == 0 || len(c.After) > MaxCheckpointPosition:
		return fmt.Errorf("%w: checkpoint of %s: a position of %d bytes", ErrMalformed, c.Table, len(c.After))
	case c.Rows < 0 || c.Batches < 0:
		return fmt.Errorf("%w: checkpoint of %s: negative counts", ErrMalformed, c.Table)
	}
	return nil
}

// ScanKey sums up what decides which rows a window of t reads and in what
// order, and what happens to them: every setting but Enabled. A window
// begun under one key goes on only under the same key.
func (t Table) ScanKey() string {
	t.Enabled = false
	b, _ := json.Marshal(t)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// ValidBound reports whether s is a window bound as the change sources
// write them: empty, an integer, or a time "2006-01-02 15:04:05.000000",
// optionally joined with a deletions part of the time form (JoinBound).
func ValidBound(s string) bool {
	if len(s) > 63 {
		return false
	}
	c, d := SplitBound(s)
	isTime := func(v string) bool {
		_, err := time.Parse("2006-01-02 15:04:05.000000", v)
		return err == nil
	}
	if c == "" {
		return d == ""
	}
	return (IsIntegerBound(c) || isTime(c)) && (d == "" || isTime(d))
}
