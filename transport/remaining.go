package transport

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gapsync/gapsync"
)

// PathRemaining answers how many rows of a pull window follow a position:
// the rows left of a window in progress, for the coordinator's status.
const PathRemaining = "/v1/remaining"

// RemainingRequest asks for the rows of Table in Window after the
// position After (from a pull page; nil for the whole window).
type RemainingRequest struct {
	Table  string         `json:"table"`
	Window gapsync.Window `json:"window"`
	After  []byte         `json:"after,omitempty"`
}

// RemainingResponse carries the count, which stops at a cap.
type RemainingResponse struct {
	Rows int64 `json:"rows"`
}

// Remaining asks the gateway how many rows of t's pull window w follow
// the position after. Retrying is safe: it reads only.
func (c *Client) Remaining(ctx context.Context, t gapsync.Table, w gapsync.Window, after []byte) (int64, error) {
	req, err := json.Marshal(RemainingRequest{Table: t.Name, Window: w, After: after})
	if err != nil {
		return -1, err
	}
	out, err := c.Call(ctx, PathRemaining, req)
	if err != nil {
		return -1, fmt.Errorf("rows left of %s: %w", t.Name, err)
	}
	var r RemainingResponse
	if err := json.Unmarshal(out, &r); err != nil || r.Rows < 0 {
		return -1, fmt.Errorf("rows left of %s: %w: %v", t.Name, gapsync.ErrMalformed, err)
	}
	return r.Rows, nil
}
