package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
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
	// Hand the last response back instead of a generic "giving up" error,
	// so the caller sees the gateway's own error code.
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c.http = rc
	return c, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.http.HTTPClient.CloseIdleConnections()
	return nil
}

// Apply sends one batch to the gateway and returns the far side's result.
// Retrying is safe: the gateway applies a batch id once.
func (c *Client) Apply(ctx context.Context, b *batch.Batch) (gapsync.Result, error) {
	var res gapsync.Result
	body, err := b.MarshalBinary()
	if err != nil {
		return res, fmt.Errorf("transport: encode batch %s: %w", b.ID, err)
	}
	out, err := c.Call(ctx, PathApply, body)
	if err != nil {
		return res, fmt.Errorf("apply %s batch %s: %w", b.Table, b.ID, err)
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return res, fmt.Errorf("apply %s batch %s: decode result: %w", b.Table, b.ID, err)
	}
	return res, nil
}

// Call seals body for path, posts it with retries, and returns the opened
// answer. A refusal by the gateway comes back as an error wrapping the
// matching gapsync sentinel.
func (c *Client) Call(ctx context.Context, path string, body []byte) ([]byte, error) {
	var (
		mu   sync.Mutex
		last string // message id of the latest attempt
	)
	endpoint := "POST " + path
	seal := func() (io.Reader, error) {
		env, h, err := c.keys.Seal(nil, crypto.Header{Sender: ZoneInternet, Endpoint: endpoint}, body)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		last = h.MessageID
		mu.Unlock()
		return bytes.NewReader(env), nil
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, c.base+path, retryablehttp.ReaderFunc(seal))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", gapsync.ErrRemote, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read response: %v", gapsync.ErrRemote, err)
	}
	if int64(len(raw)) > c.opts.MaxResponse {
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
	// An error answer: sealed when the gateway had authenticated us,
	// plain JSON when it refused the envelope itself.
	if openErr != nil {
		plain = raw
	}
	var eb errorBody
	if json.Unmarshal(plain, &eb) != nil || eb.Code == "" {
		return nil, fmt.Errorf("%w: HTTP %d", gapsync.ErrRemote, resp.StatusCode)
	}
	sentinel := gapsync.ErrorOf(eb.Code)
	if resp.StatusCode >= 500 {
		sentinel = gapsync.ErrRemote
	}
	return nil, fmt.Errorf("%w: gateway said (HTTP %d): %s", sentinel, resp.StatusCode, eb.Error)
}

// slogAdapter lets retryablehttp log through slog at debug level.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Error(msg string, kv ...any) { a.l.Warn(msg, kv...) }
func (a slogAdapter) Info(msg string, kv ...any)  { a.l.Debug(msg, kv...) }
func (a slogAdapter) Debug(msg string, kv ...any) { a.l.Debug(msg, kv...) }
func (a slogAdapter) Warn(msg string, kv ...any)  { a.l.Warn(msg, kv...) }
