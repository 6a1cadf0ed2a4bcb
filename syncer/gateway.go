package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/crypto"
	"github.com/gapsync/gapsync/throttle"
	"github.com/gapsync/gapsync/transport"
)

// GatewayOptions tune a Gateway. Nil gives the defaults.
type GatewayOptions struct {
	// Replay remembers accepted message ids. Default: the writer, when it
	// implements transport.ReplayGuard (storage's *DB does). The ids must
	// live in the intranet database so that a restart forgets nothing.
	Replay transport.ReplayGuard
	// MaxBody caps a request body. Default transport.DefaultMaxBody
	// (16 MiB). Set, it overrides Server.MaxBody.
	MaxBody int64
	// MaxSkew bounds envelope timestamps. Default 5 minutes. The replay
	// guard must remember ids for at least twice as long (NewGateway
	// checks it when the guard reports its horizon). Set, it overrides
	// Server.MaxSkew.
	MaxSkew time.Duration
	// Now is the clock envelopes are checked against; default time.Now.
	Now func() time.Time
	// Server holds the limits and timeouts of the HTTP side (concurrent
	// requests, bytes in flight, body rate and timeouts); nil gives the
	// transport defaults. Pass the same options to transport.NewHTTPServer.
	// Its Logger and Observe are set by the gateway.
	Server *transport.ServerOptions
	// Limits bound what a decoded batch may hold. Default batch defaults.
	Limits *batch.Limits
	// Columns, when it names a table, is the only set of columns a push
	// batch of that table may write here (the key columns included): a
	// batch naming any other column is refused with
	// gapsync.ErrUnknownColumn and nothing is written. It stops a
	// compromised internet side from writing columns it has no business
	// with (a role, a price, an owner). Table and column names compare
	// without regard to letter case. Tables it does not
	// name may write any column they have. Default: none named.
	Columns map[string][]string
	// FileDigest is the file digest setting of the zones, as
	// FileOptions.Digest: "sm3" when file records carry an SM3 digest.
	// An offered file whose record disagrees is refused with
	// gapsync.ErrDigestMismatch, before anything is stored. Default "".
	FileDigest string
	// MaxChunkSize is the largest file chunk the isolation device passes
	// in one statement. An offered file in larger chunks is refused with
	// gapsync.ErrTooLarge before anything is stored, and so is a request
	// for the chunks of an intranet file in larger chunks, each with the
	// setting to change. Default: the intranet database's own limit when
	// it reports one (storage's DB.MaxChunkSize, from its device
	// profile); none otherwise.
	MaxChunkSize int64
	// Metrics, when set, counts requests by path and result ("ok" or the
	// refusal's code, such as "tampered" or "replayed").
	Metrics Recorder
	// Throttle's busy pause is waited out before each batch is applied
	// and each pull page is read: while the intranet database it probes
	// is over its limits, the request waits (up to the coordinator's
	// request timeout; a request cut then is retried like any). Nil: none.
	Throttle *throttle.Throttler
	// Logger; default discards.
	Logger *slog.Logger
}

// Gateway is the external zone's service: an http.Handler that the
// internet coordinator calls. It keeps no state of its own: batches go to
// the intranet database through the IsolationWriter, and accepted message
// ids go to the replay guard, which lives there too.
type Gateway struct {
	cols  map[string]map[string]bool // GatewayOptions.Columns, lower case
	db    IntranetDB
	files FileDB // nil when the intranet database has no file tables
	srv   *transport.Server
	opts  GatewayOptions
}

// NewGateway returns a Gateway that serves the intranet database db and
// opens and seals envelopes with keys.
func NewGateway(db IntranetDB, keys *crypto.Keyring, o *GatewayOptions) (*Gateway, error) {
	g := &Gateway{db: db}
	if o != nil {
		g.opts = *o
	}
	if g.opts.Logger == nil {
		g.opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if g.opts.Replay == nil {
		rg, ok := db.(transport.ReplayGuard)
		if !ok {
			return nil, errors.New("syncer: NewGateway: the writer keeps no message ids; set GatewayOptions.Replay")
		}
		g.opts.Replay = rg
	}
	if l, ok := db.(interface{ MaxChunkSize() int64 }); ok && g.opts.MaxChunkSize == 0 {
		g.opts.MaxChunkSize = l.MaxChunkSize()
	}
	if g.opts.MaxSkew <= 0 && g.opts.Server != nil {
		g.opts.MaxSkew = g.opts.Server.MaxSkew
	}
	if err := checkHorizon(g.opts.Replay, g.opts.MaxSkew); err != nil {
		return nil, err
	}
	if err := checkDigest("NewGateway: GatewayOptions.FileDigest", g.opts.FileDigest); err != nil {
		return nil, err
	}
	if len(g.opts.Columns) > 0 {
		g.cols = map[string]map[string]bool{}
		for table, cols := range g.opts.Columns {
			if err := gapsync.ValidIdentifier(table); err != nil {
				return nil, fmt.Errorf("syncer: NewGateway: GatewayOptions.Columns: %w", err)
			}
			set := map[string]bool{}
			for _, c := range cols {
				if err := gapsync.ValidIdentifier(c); err != nil {
					return nil, fmt.Errorf("syncer: NewGateway: GatewayOptions.Columns[%q]: %w", table, err)
				}
				set[strings.ToLower(c)] = true
			}
			if len(set) == 0 {
				return nil, fmt.Errorf("syncer: NewGateway: GatewayOptions.Columns[%q] allows no column; leave the table out to allow all", table)
			}
			if _, dup := g.cols[strings.ToLower(table)]; dup {
				return nil, fmt.Errorf("syncer: NewGateway: GatewayOptions.Columns names %q twice (letter case aside)", table)
			}
			g.cols[strings.ToLower(table)] = set
		}
	}
	m := orNoRecorder(g.opts.Metrics)
	var so transport.ServerOptions
	if g.opts.Server != nil {
		so = *g.opts.Server
	}
	if g.opts.MaxBody > 0 {
		so.MaxBody = g.opts.MaxBody
	}
	if g.opts.MaxSkew > 0 {
		so.MaxSkew = g.opts.MaxSkew
	}
	if g.opts.Now != nil {
		so.Now = g.opts.Now
	}
	so.Logger = g.opts.Logger
	so.Observe = func(path string, err error) { m.Request(path, requestResult(err)) }
	srv, err := transport.NewServer(keys, g.opts.Replay, &so)
	if err != nil {
		return nil, err
	}
	srv.Handle(transport.PathApply, g.apply)
	srv.Handle(transport.PathBound, g.bound)
	srv.Handle(transport.PathPull, g.pull)
	srv.Handle(transport.PathRemaining, g.remaining)
	srv.Handle(transport.PathEmpty, g.empty)
	srv.Handle(transport.PathShape, g.shape)
	srv.Handle(transport.PathVerify, g.verify)
	g.handleFiles(srv)
	g.srv = srv
	return g, nil
}

// Horizoner is implemented by a replay guard that forgets accepted ids
// after a while (storage's *DB does): ReplayHorizon says how long.
type Horizoner interface {
	ReplayHorizon() time.Duration
}

// checkHorizon refuses a replay guard that forgets ids sooner than twice
// the envelope skew. An envelope stays acceptable for MaxSkew either side
// of the gateway's clock, so a guard that forgot sooner would take a
// replay of an envelope whose id it had dropped.
func checkHorizon(guard transport.ReplayGuard, skew time.Duration) error {
	h, ok := guard.(Horizoner)
	if !ok {
		return nil
	}
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	if horizon := h.ReplayHorizon(); horizon < 2*skew {
		return fmt.Errorf("syncer: NewGateway: the replay guard remembers message ids for %v, less than twice GatewayOptions.MaxSkew (%v), "+
			"so a replayed envelope could be accepted once its id is forgotten: set storage.Options.ReplayHorizon to at least %v, or lower MaxSkew to at most %v",
			horizon, skew, 2*skew, horizon/2)
	}
	return nil
}

// defaultMaxSkew is transport.ServerOptions' default skew.
const defaultMaxSkew = 5 * time.Minute

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	g.srv.ServeHTTP(w, r)
	if t, ok := g.opts.Metrics.(RequestTimer); ok && g.srv.Handles(r.URL.Path) {
		t.RequestDuration(r.URL.Path, time.Since(start))
	}
}

// apply is seed 1.1.6: write the batch into the intranet database and
// return its sync log entry.
func (g *Gateway) apply(ctx context.Context, body []byte) ([]byte, error) {
	// The header first: a batch for a direction, a table or columns the
	// gateway does not apply is refused before its rows are decoded.
	h, err := batch.DecodeHeader(body, g.opts.Limits)
	if err != nil {
		return nil, err
	}
	if h.Direction != string(gapsync.Push) {
		return nil, fmt.Errorf("%w: the gateway applies push batches only, got %q", gapsync.ErrMalformed, h.Direction)
	}
	if err := g.allowed(h); err != nil {
		return nil, err
	}
	if _, err := g.db.Table(ctx, h.Table, gapsync.Push); err != nil {
		return nil, err
	}
	b, err := batch.Decode(body, g.opts.Limits)
	if err != nil {
		return nil, err
	}
	if err := g.opts.Throttle.Wait(ctx, b.Table, 0, 0); err != nil {
		return nil, err
	}
	start := time.Now()
	res, err := g.db.Apply(ctx, b)
	if err != nil {
		return nil, err
	}
	g.opts.Logger.Info("applied batch", "batch", b.ID, "table", b.Table, "rows", res.Rows,
		"written", res.Written, "duplicate", res.Duplicate, "took", time.Since(start))
	return json.Marshal(res)
}

// allowed refuses a batch that names a column outside its table's
// allowlist (GatewayOptions.Columns).
func (g *Gateway) allowed(b *batch.Batch) error {
	if g.cols == nil {
		return nil
	}
	// Only plain identifiers can name a table or column here, so a name
	// that folds to a listed one in some other way cannot slip past.
	if err := gapsync.ValidIdentifier(b.Table); err != nil {
		return err
	}
	set, ok := g.cols[strings.ToLower(b.Table)]
	if !ok {
		return nil
	}
	for _, c := range b.Columns {
		if err := gapsync.ValidIdentifier(c.Name); err != nil {
			return err
		}
		if !set[strings.ToLower(c.Name)] {
			return fmt.Errorf("%w: column %q of table %q is not in the gateway's allowlist (GatewayOptions.Columns)",
				gapsync.ErrUnknownColumn, c.Name, b.Table)
		}
	}
	return nil
}

// bound is seed 1.2.1 seen from the intranet: the bound of a table's next
// pull window, from the intranet database's clock.
func (g *Gateway) bound(ctx context.Context, body []byte) ([]byte, error) {
	var r transport.BoundRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: bound request: %v", gapsync.ErrMalformed, err)
	}
	t, err := g.db.Table(ctx, r.Table, gapsync.Pull)
	if err != nil {
		return nil, err
	}
	b, err := g.db.Bound(ctx, t)
	if err != nil {
		return nil, err
	}
	return json.Marshal(transport.BoundResponse{Bound: b})
}

// pull is seed 1.2.4: one page of a table's intranet changes.
func (g *Gateway) pull(ctx context.Context, body []byte) ([]byte, error) {
	var r transport.PullRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: pull request: %v", gapsync.ErrMalformed, err)
	}
	if r.Window.To == "" || len(r.Window.To) > 64 || len(r.Window.From) > 64 || !r.Window.Ordered() {
		return nil, fmt.Errorf("%w: pull window %q..%q", gapsync.ErrMalformed, r.Window.From, r.Window.To)
	}
	r.Clamp()
	t, err := g.db.Table(ctx, r.Table, gapsync.Pull)
	if err != nil {
		return nil, err
	}
	if err := g.opts.Throttle.Wait(ctx, t.Name, 0, 0); err != nil {
		return nil, err
	}
	b, next, more, err := g.db.ReadPage(ctx, t, r.Window, r.After, r.Page)
	if err != nil {
		return nil, err
	}
	b.ID, b.Direction = "page", string(gapsync.Pull)
	if g.files != nil && len(b.Rows) > 0 && !r.DryRun {
		// Seed 1.2.5: the files these rows reference are recorded for the
		// intranet worker to read into the database.
		if _, err := g.files.NoteBatchFiles(ctx, t, gapsync.Intranet, b); err != nil {
			return nil, err
		}
	}
	g.opts.Logger.Info("served pull page", "table", t.Name, "rows", len(b.Rows), "more", more)
	return (&transport.PullPage{Batch: b, Next: next, More: more}).MarshalBinary()
}

// remaining counts the rows of a pull window after a page's position, for
// the status of a window in progress (SELECT only).
func (g *Gateway) remaining(ctx context.Context, body []byte) ([]byte, error) {
	rd, ok := g.db.(Remainder)
	if !ok {
		return nil, errors.New("syncer: the intranet database cannot count the rows left of a window")
	}
	var r transport.RemainingRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: remaining request: %v", gapsync.ErrMalformed, err)
	}
	if r.Window.To == "" || !gapsync.ValidBound(r.Window.From) || !gapsync.ValidBound(r.Window.To) || !r.Window.Ordered() || len(r.After) > gapsync.MaxCheckpointPosition {
		return nil, fmt.Errorf("%w: remaining request for window %q..%q", gapsync.ErrMalformed, r.Window.From, r.Window.To)
	}
	t, err := g.db.Table(ctx, r.Table, gapsync.Pull)
	if err != nil {
		return nil, err
	}
	n, err := rd.Remaining(ctx, t, r.Window, r.After)
	if err != nil {
		return nil, err
	}
	return json.Marshal(transport.RemainingResponse{Rows: n})
}
