package transport

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gapsync/gapsync"
)

// PathEmpty answers, for many pulled tables in one request, which have
// nothing to move: the intranet side's batched check of idle tables.
const PathEmpty = "/v1/empty"

// MaxWindowProbes is the most tables one EmptyRequest may carry; Client
// splits longer lists.
const MaxWindowProbes = 5000

// WindowProbe is one table of an EmptyRequest: its intranet name and the
// last good bound of its pull window.
type WindowProbe struct {
	Table string `json:"table"`
	From  string `json:"from"`
}

// EmptyRequest asks which of Tables have an empty next pull window.
type EmptyRequest struct {
	Tables []WindowProbe `json:"tables"`
}

// EmptyResponse carries, in the order of the request, the bound of each
// table's next window when that window holds nothing to move, else "".
type EmptyResponse struct {
	Bounds []string `json:"bounds"`
}

// EmptyWindows asks the gateway which of the probed tables' next pull
// windows hold nothing to move (see syncer.RemoteEmpty): the bound of
// each empty window, "" for a table whose window must run. One request
// per MaxWindowProbes tables. Retrying is safe: it reads only.
func (c *Client) EmptyWindows(ctx context.Context, probes []WindowProbe) ([]string, error) {
	out := make([]string, 0, len(probes))
	for start := 0; start < len(probes); start += MaxWindowProbes {
		part := probes[start:min(start+MaxWindowProbes, len(probes))]
		req, err := json.Marshal(EmptyRequest{Tables: part})
		if err != nil {
			return nil, err
		}
		body, err := c.Call(ctx, PathEmpty, req)
		if err != nil {
			return nil, fmt.Errorf("empty windows of %d tables: %w", len(part), err)
		}
		var r EmptyResponse
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("empty windows of %d tables: %w: %v", len(part), gapsync.ErrMalformed, err)
		}
		if len(r.Bounds) != len(part) {
			return nil, fmt.Errorf("empty windows: %w: %d answers to %d tables", gapsync.ErrMalformed, len(r.Bounds), len(part))
		}
		for _, b := range r.Bounds {
			if b != "" && !gapsync.ValidBound(b) {
				return nil, fmt.Errorf("empty windows: %w: bound %.64q", gapsync.ErrMalformed, b)
			}
		}
		out = append(out, r.Bounds...)
	}
	return out, nil
}
