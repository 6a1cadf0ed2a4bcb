package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
	"github.com/gapsync/gapsync/crypto"
)

// ClientOptions tune a Client. Nil gives the defaults.
type ClientOptions struct {
	// HTTPClient carries the requests; set its Transport for TLS settings.
	// Default: a pooled client with a 5-minute timeout.
	HTTPClient *http.Client
	// RetryMax is how many times a failed attempt is retried. Default 4;
	// a negative value means no retries.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff.
	// Defaults 500ms and 15s.
	RetryWaitMin, RetryWaitMax time.Duration
	// MaxResponse caps a response body. Default 64 MiB.
	MaxResponse int64
	// MaxRequest caps a sealed request body; a larger one fails at once
	// with gapsync.ErrTooLarge instead of being sent to a gateway that
	// would refuse it. Keep it equal to the gateway's
	// ServerOptions.MaxBody. Default DefaultMaxBody (16 MiB).
	MaxRequest int64
	// MaxSkew is how far a response's timestamp may be from this host's
	// clock. Default 5 minutes.
	MaxSkew time.Duration
	// Logger; default discards.
	Logger *slog.Logger
}

// Client is the coordinator's side of the protocol. It is safe for
// concurrent use.
type Client struct {
	base string
	keys *crypto.Keyring
	http *retryablehttp.Client
	opts ClientOptions
}

// NewClient returns a client for the gateway at baseURL (for example
// "https://gateway.example:8443").
func NewClient(baseURL string, keys *crypto.Keyring, o *ClientOptions) (*Client, error) {
	if keys == nil {
		return nil, errors.New("transport: NewClient needs a keyring")
	}
	if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
		return nil, fmt.Errorf("transport: gateway URL %q must start with http:// or https://", baseURL)
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), keys: keys}
	if o != nil {
		c.opts = *o
	}
	if c.opts.RetryMax == 0 {
		c.opts.RetryMax = 4
	} else if c.opts.RetryMax < 0 {
		c.opts.RetryMax = 0
	}
	if c.opts.RetryWaitMin == 0 {
		c.opts.RetryWaitMin = 500 * time.Millisecond
	}
	if c.opts.RetryWaitMax == 0 {
		c.opts.RetryWaitMax = 15 * time.Second
	}
	if c.opts.MaxResponse <= 0 {
		c.opts.MaxResponse = 64 << 20
	}
	if c.opts.MaxRequest <= 0 {
		c.opts.MaxRequest = DefaultMaxBody
	}
	if c.opts.MaxSkew <= 0 {
		c.opts.MaxSkew = 5 * time.Minute
	}
	if c.opts.Logger == nil {
		c.opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	rc := retryablehttp.NewClient()
	if c.opts.HTTPClient != nil {
		rc.HTTPClient = c.opts.HTTPClient
	} else {
		rc.HTTPClient.Timeout = 5 * time.Minute
	}
	rc.RetryMax = c.opts.RetryMax
	rc.RetryWaitMin, rc.RetryWaitMax = c.opts.RetryWaitMin, c.opts.RetryWaitMax
	rc.Logger = slogAdapter{c.opts.Logger}
	rc.CheckRetry = checkRetry
	rc.Backoff = backoff
	log, retries := c.opts.Logger, c.opts.RetryMax
	rc.RequestLogHook = func(l retryablehttp.Logger, r *http.Request, attempt int) {
		setContentLength(l, r, attempt)
		if attempt > 0 { // seen by default: a gateway that needs retries is worth a look
			log.Warn("retrying a request to the gateway", "path", r.URL.Path, "retry", attempt, "of", retries)
		}
	}
	rc.ResponseLogHook = func(_ retryablehttp.Logger, resp *http.Response) {
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			log.Warn("the gateway answered with an error", "path", resp.Request.URL.Path, "status", resp.StatusCode)
		}
	}
	// Hand the last response back instead of a generic "giving up" error,
	// so the caller sees the gateway's own error code.
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c.http = rc
	return c, nil
}

// MaxRequest is the largest sealed request the client sends
// (ClientOptions.MaxRequest); a coordinator checks its page and chunk
// batch sizes against it.
func (c *Client) MaxRequest() int64 { return c.opts.MaxRequest }

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.HTTPClient.CloseIdleConnections()
	return nil
}

// Apply sends one batch to the gateway and returns the far side's result.
// Retrying is safe: the gateway applies a batch id once.
func (c *Client) Apply(ctx context.Context, b *batch.Batch) (gapsync.Result, error) {
	var res gapsync.Result
	var body []byte
	var err error
	if p, _ := batchBufs.Get().(*[]byte); p != nil {
		body, err = b.AppendBinary((*p)[:0])
	} else {
		body, err = b.MarshalBinary() // sized to the batch
	}
	if err != nil {
		return res, fmt.Errorf("transport: encode batch %s: %w", b.ID, err)
	}
	out, err := c.Call(ctx, PathApply, body)
	if cap(body) <= maxPooledBatch {
		// Call sealed a copy of body for each attempt, and returned.
		body = body[:0]
		batchBufs.Put(&body)
	}
	if err != nil {
		return res, fmt.Errorf("apply %s batch %s: %w", b.Table, b.ID, err)
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("apply %s batch %s: decode result: %w", b.Table, b.ID, err)
	}
	return res, nil
}

// batchBufs holds Apply's encoding buffers between batches (a *[]byte
// each): a page of a first load encodes to a few megabytes.
var batchBufs sync.Pool

// maxPooledBatch is the largest encoding buffer batchBufs keeps.
const maxPooledBatch = 64 << 20

// Call seals body for path, posts it with retries, and returns the opened
// answer. A refusal by the gateway comes back as an error wrapping the
// matching gapsync sentinel. Only a sealed answer, which the gateway gives
// once it has authenticated the request, can carry a table-, file- or
// lease-level sentinel; an answer in clear can only be a refusal of the
// envelope itself (see envelopeCodes), and its text is cut to 512 bytes.
func (c *Client) Call(ctx context.Context, path string, body []byte) ([]byte, error) {
	var (
		mu   sync.Mutex
		last string // message id of the latest attempt
	)
	size := new(atomic.Int64) // sealed length of the latest attempt, for setContentLength
	endpoint := "POST " + path
	// retryablehttp calls seal once when the request is made, to learn
	// its length, then once an attempt: the first attempt sends the
	// envelope of that first call (its id is last's) instead of sealing
	// the body a second time.
	var probe []byte
	probed := false
	seal := func() (io.Reader, error) {
		mu.Lock()
		env, first := probe, !probed
		probe, probed = nil, true
		mu.Unlock()
		if env != nil {
			return bytes.NewReader(env), nil
		}
		env, h, err := c.keys.Seal(nil, crypto.Header{Sender: ZoneInternet, Endpoint: endpoint}, body)
		if err != nil {
			return nil, err
		}
		if int64(len(env)) > c.opts.MaxRequest {
			return nil, fmt.Errorf("%w: a request to %s of %d bytes sealed, over the %d-byte cap (ClientOptions.MaxRequest, which should equal the gateway's MaxBody): use smaller pages or chunk batches, or raise both",
				gapsync.ErrTooLarge, path, len(env), c.opts.MaxRequest)
		}
		mu.Lock()
		last = h.MessageID
		if first {
			probe = env
		}
		mu.Unlock()
		size.Store(int64(len(env)))
		return bytes.NewReader(env), nil
	}
	req, err := retryablehttp.NewRequestWithContext(context.WithValue(ctx, sizeKey{}, size), http.MethodPost, c.base+path, retryablehttp.ReaderFunc(seal))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", gapsync.ErrRemote, explainConn(c.base, err))
	}
	defer resp.Body.Close()
	limit := c.opts.MaxResponse
	if resp.StatusCode != http.StatusOK {
		limit = min(limit, maxErrorResponse)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read response: %v", gapsync.ErrRemote, err)
	}
	if int64(len(raw)) > limit {
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%w: HTTP %d with an answer over %d bytes, not the gateway's", gapsync.ErrRemote, resp.StatusCode, limit)
		}
		return nil, fmt.Errorf("%w: response over %d bytes", gapsync.ErrTooLarge, c.opts.MaxResponse)
	}
	mu.Lock()
	id := last
	mu.Unlock()
	_, plain, openErr := c.keys.Open(nil, raw, &crypto.OpenOptions{
		MaxSkew: c.opts.MaxSkew, Endpoint: "RESP " + path, Sender: ZoneExternal, ReplyTo: id,
	})
	if resp.StatusCode == http.StatusOK {
		if openErr != nil {
			return nil, fmt.Errorf("open response: %w", openErr)
		}
		return plain, nil
	}
	if openErr != nil {
		if resp.StatusCode == http.StatusNotFound {
			// A gateway of an earlier version: the caller may fall back
			// to the endpoints it has.
			return nil, fmt.Errorf("%w %s: %w", ErrNoEndpoint, path, unsealedError(resp.StatusCode, raw))
		}
		return nil, unsealedError(resp.StatusCode, raw)
	}
	// A sealed error: the gateway authenticated the request and says why
	// it failed.
	var eb errorBody
	if json.Unmarshal(plain, &eb) != nil || eb.Code == "" {
		return nil, fmt.Errorf("%w: HTTP %d", gapsync.ErrRemote, resp.StatusCode)
	}
	// Its code names the sentinel whatever the status ("internal" and
	// codes unknown here give ErrRemote).
	sentinel := gapsync.ErrorOf(eb.Code)
	return nil, fmt.Errorf("%w: gateway said (HTTP %d): %s", sentinel, resp.StatusCode, clip(eb.Error, maxSealedError))
}

// ErrNoEndpoint is wrapped (with gapsync.ErrRemote) by the error of a
// call that the gateway answered 404 in clear: it has no such endpoint,
// as a gateway of an earlier version. The answer is not sealed, so it
// may come from anyone on the path: a caller may fall back to older
// endpoints, which are sealed like every other, and nothing more.
var ErrNoEndpoint = errors.New("transport: the gateway has no endpoint")

// maxErrorResponse caps an error answer: the gateway's are a few KiB.
const maxErrorResponse = 64 << 10

// maxUnsealedText is how much of an answer in clear is kept for logs and
// the sync log: whoever sent it has not shown a key.
const maxUnsealedText = 512

// envelopeCodes are the only refusals a gateway answers in clear: those it
// makes before it has authenticated the request. Any other code in clear
// (lease_held, unknown_table, …) is not the gateway's, and is not believed.
var envelopeCodes = map[gapsync.Code]int{
	"too_large":    http.StatusRequestEntityTooLarge,
	"busy":         http.StatusServiceUnavailable,
	"too_slow":     http.StatusRequestTimeout,
	"bad_envelope": http.StatusBadRequest,
	"tampered":     http.StatusUnauthorized,
	"unknown_key":  http.StatusUnauthorized,
	"stale":        http.StatusUnauthorized,
	"replayed":     http.StatusConflict,
}

// unsealedError is the error for an answer the gateway did not seal.
func unsealedError(status int, raw []byte) error {
	var eb errorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Code != "" {
		if want, ok := envelopeCodes[eb.Code]; ok && want == status {
			sentinel := gapsync.ErrorOf(eb.Code)
			if status >= 500 && sentinel != gapsync.ErrBusy {
				sentinel = gapsync.ErrRemote
			}
			return fmt.Errorf("%w: gateway refused the request (HTTP %d): %s", sentinel, status, clip(eb.Error, maxUnsealedText))
		}
		return fmt.Errorf("%w: HTTP %d with code %q in clear, which only a sealed answer may carry (not believed): %s",
			gapsync.ErrRemote, status, clip(string(eb.Code), 64), clip(eb.Error, maxUnsealedText))
	}
	return fmt.Errorf("%w: HTTP %d: %s", gapsync.ErrRemote, status, clip(string(raw), maxUnsealedText))
}

// sizeKey carries a request's sealed length to setContentLength.
type sizeKey struct{}

// setContentLength runs before every attempt: each attempt is sealed
// afresh, and the gateway wants to know the length before it reads.
func setContentLength(_ retryablehttp.Logger, r *http.Request, _ int) {
	if n, ok := r.Context().Value(sizeKey{}).(*atomic.Int64); ok && n.Load() > 0 {
		r.ContentLength = n.Load()
	}
}

// checkRetry is retryablehttp's policy, and also retries a body the
// gateway found too slow (408), which a later attempt may send faster. It
// does not retry a TLS or scheme mismatch (see explainConn): a setting
// mends those, not waiting.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if err != nil && connHint("", err) != "" {
		return false, err
	}
	if err == nil && ctx.Err() == nil && resp != nil && resp.StatusCode == http.StatusRequestTimeout {
		return true, nil
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// backoff is retryablehttp's, with a Retry-After never longer than
// RetryWaitMax: the header comes in clear.
func backoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	return time.Duration(math.Min(float64(retryablehttp.DefaultBackoff(min, max, attempt, resp)), float64(max)))
}

// slogAdapter lets retryablehttp log through slog at debug level.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Error(msg string, kv ...any) { a.l.Warn(msg, kv...) }
func (a slogAdapter) Info(msg string, kv ...any)  { a.l.Debug(msg, kv...) }
func (a slogAdapter) Debug(msg string, kv ...any) { a.l.Debug(msg, kv...) }
func (a slogAdapter) Warn(msg string, kv ...any)  { a.l.Warn(msg, kv...) }
