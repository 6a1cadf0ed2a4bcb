package transport

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gapsync/gapsync"
)

// PathShape answers the intranet's shape of its sync tables, for the
// coordinator's setup check (SELECT on the catalogue only).
const PathShape = "/v1/shape"

// MaxShapeTables caps the names one shape request may ask about.
const MaxShapeTables = 10_000

// ShapeRequest asks for the shape of every table in the intranet's
// sync_config and of the named tables (the internet side's enabled ones).
type ShapeRequest struct {
	Tables []string `json:"tables"`
	// Only asks for the named tables' shapes alone (see Client.ShapesOf);
	// a gateway that does not know it answers with every table's.
	Only bool `json:"only,omitempty"`
}

// ShapeResponse carries the shapes: one per table in the intranet's
// sync_config, then one per requested name that is not there (with a nil
// Config and nothing else).
type ShapeResponse struct {
	Shapes []gapsync.Shape `json:"shapes"`
}

// Shapes asks the gateway for the intranet's shapes of its sync tables
// and of names. Retrying is safe: it reads only.
func (c *Client) Shapes(ctx context.Context, names []string) ([]gapsync.Shape, error) {
	if len(names) > MaxShapeTables {
		return nil, fmt.Errorf("%w: %d tables in one shape request, at most %d", gapsync.ErrTooLarge, len(names), MaxShapeTables)
	}
	req, err := json.Marshal(ShapeRequest{Tables: names})
	if err != nil {
		return nil, err
	}
	out, err := c.Call(ctx, PathShape, req)
	if err != nil {
		return nil, fmt.Errorf("shape: %w", err)
	}
	var r ShapeResponse
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("shape: %w: %v", gapsync.ErrMalformed, err)
	}
	return r.Shapes, nil
}

// ShapesOf asks the gateway for the intranet's shapes of the named
// tables only: what schema drift needs of one table, without the
// catalogue reads of every configured table. An answer may hold more
// shapes (a gateway that does not know ShapeRequest.Only); pick the
// ones asked for by name. Retrying is safe: it reads only.
func (c *Client) ShapesOf(ctx context.Context, names []string) ([]gapsync.Shape, error) {
	if len(names) > MaxShapeTables {
		return nil, fmt.Errorf("%w: %d tables in one shape request, at most %d", gapsync.ErrTooLarge, len(names), MaxShapeTables)
	}
	req, err := json.Marshal(ShapeRequest{Tables: names, Only: true})
	if err != nil {
		return nil, err
	}
	out, err := c.Call(ctx, PathShape, req)
	if err != nil {
		return nil, fmt.Errorf("shape: %w", err)
	}
	var r ShapeResponse
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("shape: %w: %v", gapsync.ErrMalformed, err)
	}
	return r.Shapes, nil
}
