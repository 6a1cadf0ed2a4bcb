package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

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

// Limits of one file-flow request or answer, the same on both sides. A
// decoder stops at the first item over one, before it allocates more.
const (
	// MaxOfferRecords bounds the records of one offer or records answer,
	// and the ids of one acknowledgement.
	MaxOfferRecords = 500
	// MaxOfferChunks bounds the chunks of all the records of one offer
	// together, so that the chunk indexes an answer lists stay capped
	// (a record has at most gapsync.MaxChunks).
	MaxOfferChunks = gapsync.MaxChunks
	// MaxChunksPerRequest bounds the chunks of one chunks frame, and the
	// chunk indexes of one request for or acknowledgement of chunks.
	MaxChunksPerRequest = 256
	// maxChunkHeader bounds the JSON header of one framed chunk.
	maxChunkHeader = 4096
)

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

// DecodeChunks parses a frame of at most max chunks (MaxChunksPerRequest
// when max <= 0); it stops at the first chunk past the limit. Data slices
// alias data. Each header must name a file id of at most 64 bytes and an
// index of at least 0.
func DecodeChunks(data []byte, max int) ([]gapsync.Chunk, error) {
	if max <= 0 {
		max = MaxChunksPerRequest
	}
	var out []gapsync.Chunk
	for p := 0; p < len(data); {
		if len(out) == max {
			return nil, fmt.Errorf("%w: more than %d chunks in one frame", gapsync.ErrTooLarge, max)
		}
		n, k := binary.Uvarint(data[p:])
		if k <= 0 || n > maxChunkHeader || n > uint64(len(data)-p-k) {
			return nil, fmt.Errorf("%w: chunk header at %d", gapsync.ErrMalformed, p)
		}
		p += k
		var c gapsync.Chunk
		if err := json.Unmarshal(data[p:p+int(n)], &c); err != nil {
			return nil, fmt.Errorf("%w: chunk header: %v", gapsync.ErrMalformed, err)
		}
		if c.Idx < 0 || len(c.FileID) > 64 {
			return nil, fmt.Errorf("%w: chunk header at %d: file %.64q index %d", gapsync.ErrMalformed, p, c.FileID, c.Idx)
		}
		p += int(n)
		m, k := binary.Uvarint(data[p:])
		if k <= 0 || m > uint64(len(data)-p-k) {
			return nil, fmt.Errorf("%w: chunk data at %d", gapsync.ErrMalformed, p)
		}
		p += k
		c.Data = data[p : p+int(m) : p+int(m)]
		p += int(m)
		if out == nil {
			// Every chunk takes at least 4 bytes ("{}" framed, no data).
			out = make([]gapsync.Chunk, 0, min(max, len(data)/4+1))
		}
		out = append(out, c)
	}
	return out, nil
}

// DecodeOffer parses an offer request as a stream: at most
// MaxOfferRecords records, each valid (gapsync.FileRecord.Validate), of
// at most MaxOfferChunks chunks in all. It stops at the first record that
// breaks a rule.
func DecodeOffer(data []byte) ([]gapsync.FileRecord, error) {
	var total int64
	recs, err := decodeRecordList(data, MaxOfferRecords, func(r *gapsync.FileRecord) error {
		if err := r.Validate(); err != nil {
			return err
		}
		if total += int64(r.Chunks); total > MaxOfferChunks {
			return fmt.Errorf("%w: more than %d chunks in one offer", gapsync.ErrTooLarge, MaxOfferChunks)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("offer: %w", err)
	}
	return recs, nil
}

// DecodeRecords parses a records answer of at most max records
// (MaxOfferRecords when max <= 0) as a stream. It does not validate the
// records: the caller sets aside those that fail, so that one bad record
// does not hold up the others.
func DecodeRecords(data []byte, max int) ([]gapsync.FileRecord, error) {
	if max <= 0 || max > MaxOfferRecords {
		max = MaxOfferRecords
	}
	recs, err := decodeRecordList(data, max, nil)
	if err != nil {
		return nil, fmt.Errorf("records answer: %w", err)
	}
	return recs, nil
}

// decodeRecordList reads {"records": [record, ...]} (other members are
// skipped), at most max records, calling check, when set, on each as it
// is read.
func decodeRecordList(data []byte, max int, check func(*gapsync.FileRecord) error) ([]gapsync.FileRecord, error) {
	var out []gapsync.FileRecord
	err := decodeObject(data, func(dec *json.Decoder, key string) (bool, error) {
		if key != "records" {
			return false, nil
		}
		return true, decodeArray(dec, max-len(out), "records", func() error {
			var r gapsync.FileRecord
			if err := dec.Decode(&r); err != nil {
				return fmt.Errorf("%w: record %d: %v", gapsync.ErrMalformed, len(out), err)
			}
			if check != nil {
				if err := check(&r); err != nil {
					return err
				}
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// DecodeAck parses an acknowledgement of at most MaxOfferRecords ids.
func DecodeAck(data []byte) (AckRequest, error) {
	var r AckRequest
	err := decodeObject(data, func(dec *json.Decoder, key string) (bool, error) {
		if key != "ids" {
			return false, nil
		}
		return true, decodeArray(dec, MaxOfferRecords-len(r.IDs), "ids", func() error {
			var id string
			if err := dec.Decode(&id); err != nil {
				return fmt.Errorf("%w: id: %v", gapsync.ErrMalformed, err)
			}
			if len(id) > 64 {
				return fmt.Errorf("%w: id of %d bytes", gapsync.ErrMalformed, len(id))
			}
			r.IDs = append(r.IDs, id)
			return nil
		})
	})
	if err != nil {
		return AckRequest{}, fmt.Errorf("ack: %w", err)
	}
	return r, nil
}

// DecodeChunksRequest parses a request for, or acknowledgement of, at
// most MaxChunksPerRequest chunks of one file.
func DecodeChunksRequest(data []byte) (ChunksRequest, error) {
	var r ChunksRequest
	err := decodeObject(data, func(dec *json.Decoder, key string) (bool, error) {
		switch key {
		case "file_id":
			if err := dec.Decode(&r.FileID); err != nil || len(r.FileID) > 64 {
				return true, fmt.Errorf("%w: file id (%v)", gapsync.ErrMalformed, err)
			}
			return true, nil
		case "idxs":
			return true, decodeArray(dec, MaxChunksPerRequest-len(r.Idxs), "chunk indexes", func() error {
				var i int
				if err := dec.Decode(&i); err != nil || i < 0 {
					return fmt.Errorf("%w: chunk index %d (%v)", gapsync.ErrMalformed, i, err)
				}
				r.Idxs = append(r.Idxs, i)
				return nil
			})
		}
		return false, nil
	})
	if err != nil {
		return ChunksRequest{}, fmt.Errorf("chunks request: %w", err)
	}
	return r, nil
}

// decodeObject reads exactly one JSON object from data. It calls member
// for each key with dec positioned at the value; a member that returns
// false has its value skipped. Anything after the object is an error.
func decodeObject(data []byte, member func(dec *json.Decoder, key string) (bool, error)) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := decodeMembers(dec, member); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", gapsync.ErrMalformed)
	}
	return nil
}

// decodeMembers reads one JSON object from dec, as decodeObject does.
func decodeMembers(dec *json.Decoder, member func(dec *json.Decoder, key string) (bool, error)) error {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("%w: not a JSON object (%v)", gapsync.ErrMalformed, err)
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%w: %v", gapsync.ErrMalformed, err)
		}
		key, _ := t.(string)
		took, err := member(dec, key)
		if err != nil {
			return err
		}
		if !took {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return fmt.Errorf("%w: member %.64q: %v", gapsync.ErrMalformed, key, err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: %v", gapsync.ErrMalformed, err)
	}
	return nil
}

// decodeArray reads a JSON array (or null) of at most max elements from
// dec, calling each with dec positioned at every element. It stops at the
// first element past max.
func decodeArray(dec *json.Decoder, max int, what string, each func() error) error {
	t, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", gapsync.ErrMalformed, what, err)
	}
	if t == nil {
		return nil
	}
	if t != json.Delim('[') {
		return fmt.Errorf("%w: %s: not an array", gapsync.ErrMalformed, what)
	}
	for n := 0; dec.More(); n++ {
		if n >= max {
			return fmt.Errorf("%w: too many %s", gapsync.ErrTooLarge, what)
		}
		if err := each(); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%w: %s: %v", gapsync.ErrMalformed, what, err)
	}
	return nil
}

// DecodeOfferAnswer parses the answer to an offer of recs, and checks it:
// at most one answer per record, each naming a record offered, needing
// only chunks that record has.
func DecodeOfferAnswer(data []byte, recs []gapsync.FileRecord) ([]OfferAnswer, error) {
	byID := make(map[string]*gapsync.FileRecord, len(recs))
	for i := range recs {
		byID[recs[i].ID] = &recs[i]
	}
	var out []OfferAnswer
	seen := map[string]bool{}
	err := decodeObject(data, func(dec *json.Decoder, key string) (bool, error) {
		if key != "answers" {
			return false, nil
		}
		return true, decodeArray(dec, len(recs)-len(out), "answers", func() error {
			var a OfferAnswer
			if err := dec.Decode(&a); err != nil {
				return fmt.Errorf("%w: answer %d: %v", gapsync.ErrMalformed, len(out), err)
			}
			r, ok := byID[a.ID]
			if !ok || seen[a.ID] {
				return fmt.Errorf("%w: answer for %.64q, not offered or answered twice", gapsync.ErrMalformed, a.ID)
			}
			seen[a.ID] = true
			if len(a.Need) > r.Chunks || len(a.Held) > r.Chunks {
				return fmt.Errorf("%w: answer for %s lists more chunks than it has", gapsync.ErrMalformed, a.ID)
			}
			for _, i := range a.Need {
				if i < 0 || i >= r.Chunks {
					return fmt.Errorf("%w: answer for %s needs chunk %d of %d", gapsync.ErrMalformed, a.ID, i, r.Chunks)
				}
			}
			out = append(out, a)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("offer answer: %w", err)
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
	body, err := json.Marshal(OfferRequest{Records: recs})
	if err != nil {
		return nil, err
	}
	raw, err := c.Call(ctx, PathFileOffer, body)
	if err != nil {
		return nil, fmt.Errorf("offer files: %w", err)
	}
	return DecodeOfferAnswer(raw, recs)
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
	body, _ := json.Marshal(RecordsRequest{Limit: limit})
	raw, err := c.Call(ctx, PathFileRecords, body)
	if err != nil {
		return nil, fmt.Errorf("file records: %w", err)
	}
	return DecodeRecords(raw, limit)
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
	cs, err := DecodeChunks(raw, len(idxs))
	if err != nil {
		return nil, fmt.Errorf("get chunks of %s: %w", fileID, err)
	}
	return cs, nil
}

// AckChunks tells the intranet which chunks are stored here (seed 1.4.4d).
func (c *Client) AckChunks(ctx context.Context, fileID string, idxs []int) error {
	if err := c.callJSON(ctx, PathFileAckChunks, ChunksRequest{FileID: fileID, Idxs: idxs}, nil); err != nil {
		return fmt.Errorf("ack chunks of %s: %w", fileID, err)
	}
	return nil
}

// Paged pull endpoints: the chunks of many intranet files in one request,
// and their acknowledgement in one intranet transaction. A gateway from
// before them answers 404 (ErrNoEndpoint), and the coordinator falls back
// to GetChunks and AckChunks, file by file.
const (
	PathFileGetPage = "/v1/files/get-page" // intranet chunks of many files
	PathFileAckPage = "/v1/files/ack-page" // acknowledge them, and deliver the files whose chunks are all acknowledged
)

// Limits of one page request, the same on both sides.
const (
	// MaxPageFiles bounds the files of one page request.
	MaxPageFiles = 256
	// MaxPageBytes bounds the chunk bytes one get-page answer carries,
	// counted from the records (the last chunk of a file is its rest).
	MaxPageBytes = 2 * gapsync.MaxChunkSize
)

// PageRequest names chunks of many files: the body of a get-page and of
// an ack-page request. Every file id appears once, with each of its
// indexes once, MaxChunksPerRequest indexes in all. A file with no
// indexes in an ack has no chunk to acknowledge (an empty file), and is
// delivered once its record says so.
type PageRequest struct {
	Files []ChunksRequest `json:"files"`
}

// Chunks returns how many chunk indexes r names.
func (r PageRequest) Chunks() int {
	n := 0
	for _, f := range r.Files {
		n += len(f.Idxs)
	}
	return n
}

// Keys returns the chunks r names.
func (r PageRequest) Keys() map[gapsync.ChunkKey]bool {
	out := make(map[gapsync.ChunkKey]bool, r.Chunks())
	for _, f := range r.Files {
		for _, i := range f.Idxs {
			out[gapsync.ChunkKey{FileID: f.FileID, Idx: i}] = true
		}
	}
	return out
}

// DecodePageRequest parses a page request as a stream, and stops at the
// first file past MaxPageFiles, index past MaxChunksPerRequest in all,
// file id of more than 64 bytes, negative index, or file or index named
// twice.
func DecodePageRequest(data []byte) (PageRequest, error) {
	var r PageRequest
	ids := map[string]bool{}
	chunks := 0
	err := decodeObject(data, func(dec *json.Decoder, key string) (bool, error) {
		if key != "files" {
			return false, nil
		}
		return true, decodeArray(dec, MaxPageFiles-len(r.Files), "files", func() error {
			f, err := decodePageFile(dec, MaxChunksPerRequest-chunks)
			if err != nil {
				return fmt.Errorf("file %d: %w", len(r.Files), err)
			}
			if ids[f.FileID] {
				return fmt.Errorf("%w: file %.64q named twice", gapsync.ErrMalformed, f.FileID)
			}
			ids[f.FileID] = true
			chunks += len(f.Idxs)
			r.Files = append(r.Files, f)
			return nil
		})
	})
	if err != nil {
		return PageRequest{}, fmt.Errorf("page request: %w", err)
	}
	return r, nil
}

// decodePageFile reads one {"file_id", "idxs"} of a page request, of at
// most max indexes.
func decodePageFile(dec *json.Decoder, max int) (ChunksRequest, error) {
	var f ChunksRequest
	seen := map[int]bool{}
	err := decodeMembers(dec, func(dec *json.Decoder, key string) (bool, error) {
		switch key {
		case "file_id":
			if err := dec.Decode(&f.FileID); err != nil || len(f.FileID) > 64 {
				return true, fmt.Errorf("%w: file id (%v)", gapsync.ErrMalformed, err)
			}
			return true, nil
		case "idxs":
			return true, decodeArray(dec, max-len(f.Idxs), "chunk indexes", func() error {
				var i int
				if err := dec.Decode(&i); err != nil || i < 0 || seen[i] {
					return fmt.Errorf("%w: chunk index %d, negative, named twice or not a number (%v)", gapsync.ErrMalformed, i, err)
				}
				seen[i] = true
				f.Idxs = append(f.Idxs, i)
				return nil
			})
		}
		return false, nil
	})
	if err == nil && f.FileID == "" {
		err = fmt.Errorf("%w: no file id", gapsync.ErrMalformed)
	}
	return f, err
}

// GetPage reads intranet chunks of many files in one request. The answer
// holds at most the chunks asked for, each once; a chunk the intranet
// does not hold is left out, and the caller finds it missing. Retrying is
// safe: it reads only. A gateway without the endpoint gives an error
// wrapping ErrNoEndpoint.
func (c *Client) GetPage(ctx context.Context, req PageRequest) ([]gapsync.Chunk, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	raw, err := c.Call(ctx, PathFileGetPage, body)
	if err != nil {
		return nil, fmt.Errorf("get a page of %d files: %w", len(req.Files), err)
	}
	cs, err := DecodePageAnswer(raw, req)
	if err != nil {
		return nil, fmt.Errorf("get a page of %d files: %w", len(req.Files), err)
	}
	return cs, nil
}

// DecodePageAnswer parses the chunk frame that answers req: only chunks
// req asked for, each at most once.
func DecodePageAnswer(data []byte, req PageRequest) ([]gapsync.Chunk, error) {
	n := req.Chunks()
	if n == 0 {
		if len(data) > 0 {
			return nil, fmt.Errorf("%w: chunks in the answer to a page that asked for none", gapsync.ErrMalformed)
		}
		return nil, nil
	}
	cs, err := DecodeChunks(data, n)
	if err != nil {
		return nil, err
	}
	asked := req.Keys()
	for _, ch := range cs {
		k := gapsync.ChunkKey{FileID: ch.FileID, Idx: ch.Idx}
		if !asked[k] {
			return nil, fmt.Errorf("%w: chunk %d of %.64q in the answer, not asked for or twice", gapsync.ErrMalformed, ch.Idx, ch.FileID)
		}
		delete(asked, k)
	}
	return cs, nil
}

// AckPage tells the intranet which chunks of many files are stored here;
// the gateway acknowledges them, and marks delivered each file whose
// chunks are then all acknowledged, in one transaction. Retrying is safe.
// A gateway without the endpoint gives an error wrapping ErrNoEndpoint.
func (c *Client) AckPage(ctx context.Context, req PageRequest) error {
	if err := c.callJSON(ctx, PathFileAckPage, req, nil); err != nil {
		return fmt.Errorf("ack a page of %d files: %w", len(req.Files), err)
	}
	return nil
}
