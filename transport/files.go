package transport

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/gapsync/gapsync"
)

// File-flow endpoints (seed 1.3 and 1.4).
const (
	PathFileOffer     = "/v1/files/offer"      // internet records → intranet; answers what each needs
	PathFileChunks    = "/v1/files/chunks"     // internet chunks → intranet
	PathFileRecords   = "/v1/files/records"    // intranet records not yet acknowledged
	PathFileAck       = "/v1/files/ack"        // acknowledge intranet records
	PathFileGetChunks = "/v1/files/get-chunks" // intranet chunks by index
	PathFileAckChunks = "/v1/files/ack-chunks" // acknowledge intranet chunks
)

// OfferRequest offers internet-origin file records to the intranet.
type OfferRequest struct {
	Records []gapsync.FileRecord `json:"records"`
}

// OfferAnswer says, per record, where the intranet stands: its status
// there, and the chunk indexes it still needs (none when it has them all,
// or has the same content already).
type OfferAnswer struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Need     []int  `json:"need"`
	LocalKey string `json:"local_key,omitempty"`
	// Held answers a partial offer: the SHA-256 of each chunk the
	// intranet holds already, so that a chunk of content that changed
	// since (at the same size) is sent again.
	Held map[int]string `json:"held,omitempty"`
}

// OfferResponse answers an offer.
type OfferResponse struct {
	Answers []OfferAnswer `json:"answers"`
}

// RecordsRequest asks for intranet-origin records not yet acknowledged.
type RecordsRequest struct {
	Limit int `json:"limit"`
}

// RecordsResponse carries them.
type RecordsResponse struct {
	Records []gapsync.FileRecord `json:"records"`
}

// AckRequest acknowledges records.
type AckRequest struct {
	IDs []string `json:"ids"`
}

// ChunksRequest names chunks of one file.
type ChunksRequest struct {
	FileID string `json:"file_id"`
	Idxs   []int  `json:"idxs"`
}

// CountResponse answers how many items were stored.
type CountResponse struct {
	Stored int `json:"stored"`
}

// AppendChunks frames chunks: for each, a uvarint length and the JSON
// header (file id, index, sums), then a uvarint length and the bytes.
func AppendChunks(dst []byte, cs []gapsync.Chunk) ([]byte, error) {
	for _, c := range cs {
		h, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		dst = binary.AppendUvarint(dst, uint64(len(h)))
		dst = append(dst, h...)
		dst = binary.AppendUvarint(dst, uint64(len(c.Data)))
		dst = append(dst, c.Data...)
	}
	return dst, nil
}

// DecodeChunks parses a frame of chunks. Data slices alias data.
func DecodeChunks(data []byte) ([]gapsync.Chunk, error) {
	var out []gapsync.Chunk
	for p := 0; p < len(data); {
		n, k := binary.Uvarint(data[p:])
		if k <= 0 || n > 4096 || n > uint64(len(data)-p-k) {
			return nil, fmt.Errorf("%w: chunk header at %d", gapsync.ErrMalformed, p)
		}
		p += k
		var c gapsync.Chunk
		if err := json.Unmarshal(data[p:p+int(n)], &c); err != nil {
			return nil, fmt.Errorf("%w: chunk header: %v", gapsync.ErrMalformed, err)
		}
		p += int(n)
		m, k := binary.Uvarint(data[p:])
		if k <= 0 || m > uint64(len(data)-p-k) {
			return nil, fmt.Errorf("%w: chunk data at %d", gapsync.ErrMalformed, p)
		}
		p += k
		c.Data = data[p : p+int(m) : p+int(m)]
		p += int(m)
		out = append(out, c)
	}
	return out, nil
}

func (c *Client) callJSON(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	raw, err := c.Call(ctx, path, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%w: answer of %s: %v", gapsync.ErrMalformed, path, err)
	}
	return nil
}

// OfferFiles offers internet records to the intranet (seed 1.3.1-1.3.2).
func (c *Client) OfferFiles(ctx context.Context, recs []gapsync.FileRecord) ([]OfferAnswer, error) {
	var r OfferResponse
	if err := c.callJSON(ctx, PathFileOffer, OfferRequest{Records: recs}, &r); err != nil {
		return nil, fmt.Errorf("offer files: %w", err)
	}
	return r.Answers, nil
}

// SendChunks writes chunks into the intranet database. Retrying is safe.
func (c *Client) SendChunks(ctx context.Context, cs []gapsync.Chunk) (int, error) {
	body, err := AppendChunks(nil, cs)
	if err != nil {
		return 0, err
	}
	raw, err := c.Call(ctx, PathFileChunks, body)
	if err != nil {
		return 0, fmt.Errorf("send chunks: %w", err)
	}
	var r CountResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		return 0, fmt.Errorf("send chunks: %w: %v", gapsync.ErrMalformed, err)
	}
	return r.Stored, nil
}

// FileRecords returns intranet records not yet acknowledged (seed 1.4.2).
func (c *Client) FileRecords(ctx context.Context, limit int) ([]gapsync.FileRecord, error) {
	var r RecordsResponse
	if err := c.callJSON(ctx, PathFileRecords, RecordsRequest{Limit: limit}, &r); err != nil {
		return nil, fmt.Errorf("file records: %w", err)
	}
	return r.Records, nil
}

// AckFiles tells the intranet which records are stored here (seed 1.4.3).
func (c *Client) AckFiles(ctx context.Context, ids []string) error {
	if err := c.callJSON(ctx, PathFileAck, AckRequest{IDs: ids}, nil); err != nil {
		return fmt.Errorf("ack files: %w", err)
	}
	return nil
}

// GetChunks reads intranet chunks of one file (seed 1.4.4c).
func (c *Client) GetChunks(ctx context.Context, fileID string, idxs []int) ([]gapsync.Chunk, error) {
	body, _ := json.Marshal(ChunksRequest{FileID: fileID, Idxs: idxs})
	raw, err := c.Call(ctx, PathFileGetChunks, body)
	if err != nil {
		return nil, fmt.Errorf("get chunks of %s: %w", fileID, err)
	}
	return DecodeChunks(raw)
}

// AckChunks tells the intranet which chunks are stored here (seed 1.4.4d).
func (c *Client) AckChunks(ctx context.Context, fileID string, idxs []int) error {
	if err := c.callJSON(ctx, PathFileAckChunks, ChunksRequest{FileID: fileID, Idxs: idxs}, nil); err != nil {
		return fmt.Errorf("ack chunks of %s: %w", fileID, err)
	}
	return nil
}
