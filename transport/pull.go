package transport

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/batch"
)

// Pull-flow endpoints (seed 1.2).
const (
	// PathBound answers the intranet database's window bound for a table.
	PathBound = "/v1/bound"
	// PathPull answers one page of a table's intranet changes.
	PathPull = "/v1/pull"
)

// BoundRequest asks for a table's next window bound on the intranet side.
type BoundRequest struct {
	Table string `json:"table"`
}

// BoundResponse carries the bound.
type BoundResponse struct {
	Bound string `json:"bound"`
}

// PullRequest asks for one page of the changes of Table in Window, after
// the position After returned with the previous page (nil for the first).
type PullRequest struct {
	Table  string         `json:"table"`
	Window gapsync.Window `json:"window"`
	After  []byte         `json:"after,omitempty"`
	Page   gapsync.Page   `json:"page"`
	// DryRun asks the gateway only to read: the files the rows reference
	// are not recorded for the intranet worker (a dry run counts them).
	DryRun bool `json:"dry_run,omitempty"`
}

// PullPage is one page of changes: the batch (which may have no rows),
// the position after it, and whether more pages may follow.
type PullPage struct {
	Batch *batch.Batch
	Next  []byte
	More  bool
}

// Largest page a pull request may ask for.
const (
	maxPullRows  = 100_000
	maxPullBytes = 32 << 20
)

// Clamp keeps a page request within what the gateway serves.
func (r *PullRequest) Clamp() {
	if r.Page.Rows <= 0 || r.Page.Rows > maxPullRows {
		r.Page.Rows = min(max(r.Page.Rows, 1000), maxPullRows)
	}
	if r.Page.Bytes <= 0 || r.Page.Bytes > maxPullBytes {
		r.Page.Bytes = min(max(r.Page.Bytes, 4<<20), maxPullBytes)
	}
}

// MarshalBinary frames a page: uvarint length and bytes of Next, one byte
// More (0 or 1), then the encoded batch.
func (p *PullPage) MarshalBinary() ([]byte, error) {
	out := binary.AppendUvarint(nil, uint64(len(p.Next)))
	out = append(out, p.Next...)
	more := byte(0)
	if p.More {
		more = 1
	}
	out = append(out, more)
	return p.Batch.AppendBinary(out)
}

// DecodePullPage parses a framed page.
func DecodePullPage(data []byte, lim *batch.Limits) (*PullPage, error) {
	n, k := binary.Uvarint(data)
	if k <= 0 || n > uint64(len(data)-k) || len(data)-k-int(n) < 1 {
		return nil, fmt.Errorf("%w: pull page frame", gapsync.ErrMalformed)
	}
	p := &PullPage{Next: data[k : k+int(n)]}
	switch data[k+int(n)] {
	case 0:
	case 1:
		p.More = true
	default:
		return nil, fmt.Errorf("%w: pull page more flag", gapsync.ErrMalformed)
	}
	b, err := batch.Decode(data[k+int(n)+1:], lim)
	if err != nil {
		return nil, err
	}
	p.Batch = b
	return p, nil
}

// Bound asks the gateway for the intranet bound of table's next window.
func (c *Client) Bound(ctx context.Context, table string) (string, error) {
	req, _ := json.Marshal(BoundRequest{Table: table})
	out, err := c.Call(ctx, PathBound, req)
	if err != nil {
		return "", fmt.Errorf("bound of %s: %w", table, err)
	}
	var r BoundResponse
	if err := json.Unmarshal(out, &r); err != nil {
		return "", fmt.Errorf("bound of %s: %w: %v", table, gapsync.ErrMalformed, err)
	}
	return r.Bound, nil
}

// Pull fetches one page of intranet changes. Retrying is safe: reads
// change nothing.
func (c *Client) Pull(ctx context.Context, r PullRequest) (*PullPage, error) {
	req, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	out, err := c.Call(ctx, PathPull, req)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r.Table, err)
	}
	p, err := DecodePullPage(out, nil)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", r.Table, err)
	}
	return p, nil
}
