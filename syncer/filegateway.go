package syncer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/transport"
)

// Largest chunk and request sizes the gateway accepts in the file flow
// (transport's limits, which both sides apply).
const (
	maxChunkSize     = gapsync.MaxChunkSize
	maxRecordsPerReq = transport.MaxOfferRecords
	maxChunksPerReq  = transport.MaxChunksPerRequest
)

// handleFiles registers the file endpoints when the intranet database has
// the file tables.
func (g *Gateway) handleFiles(srv *transport.Server) {
	fdb, ok := g.db.(FileDB)
	if !ok {
		return
	}
	g.files = fdb
	srv.Handle(transport.PathFileOffer, g.offerFiles)
	srv.Handle(transport.PathFileChunks, g.storeChunks)
	srv.Handle(transport.PathFileRecords, g.fileRecords)
	srv.Handle(transport.PathFileAck, g.ackFiles)
	srv.Handle(transport.PathFileGetChunks, g.getChunks)
	srv.Handle(transport.PathFileAckChunks, g.ackChunks)
	srv.Handle(transport.PathFileGetPage, g.getPage)
	srv.Handle(transport.PathFileAckPage, g.ackPage)
}

// PageAcker is a FileDB that can acknowledge the chunks of many files and
// deliver those whose chunks are then all acknowledged in one
// transaction (storage's *DB can). The gateway's ack of a page uses it
// when the intranet database has it, and else acknowledges file by file.
type PageAcker interface {
	// AckChunkPage marks the given chunks of each file (by id) received,
	// then marks delivered (gapsync.FilePublished) each of the files that
	// is stored (gapsync.FileStored) with every chunk received: all of it
	// or, on an error, nothing. A retry is safe.
	AckChunkPage(ctx context.Context, acks map[string][]int) error
}

func decodeJSON(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v", gapsync.ErrMalformed, err)
	}
	return nil
}

// checkRecord refuses a record from the other side, or read back from a
// database, that cannot be what it claims (gapsync.FileRecord.Validate),
// or that is not of origin. A partial record (a large file offered while
// it is being staged, so that its chunks can cross as they are read) has
// no sums yet, and must not claim any.
func checkRecord(r gapsync.FileRecord, origin gapsync.Side) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r.Origin != origin {
		return fmt.Errorf("%w: file %s has origin %q here", gapsync.ErrMalformed, r.ID, r.Origin)
	}
	return nil
}

// offerFiles is seed 1.3.2 for records: store each internet record in the
// intranet database and say which chunks it still needs.
func (g *Gateway) offerFiles(ctx context.Context, body []byte) ([]byte, error) {
	// Decoded as a stream: it stops at the first record past a limit or
	// invalid, so the chunk indexes listed below stay capped too.
	recs, err := transport.DecodeOffer(body)
	if err != nil {
		return nil, err
	}
	req := transport.OfferRequest{Records: recs}
	ids := make([]string, len(req.Records))
	for i, r := range req.Records {
		if r.Origin != gapsync.Internet || (r.Status != gapsync.FileStored && r.Status != gapsync.FilePartial) {
			return nil, fmt.Errorf("%w: offer of file %s, origin %q, status %q", gapsync.ErrMalformed, r.ID, r.Origin, r.Status)
		}
		if err := digestAgrees(r, g.opts.FileDigest, "this gateway"); err != nil {
			return nil, err
		}
		if err := g.chunkFits(r); err != nil {
			return nil, err
		}
		ids[i] = r.ID
	}
	cur, err := g.files.FileRecordsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	resp := transport.OfferResponse{Answers: make([]transport.OfferAnswer, len(req.Records))}
	var puts, needy []gapsync.FileRecord
	offered := map[string]bool{} // content offered earlier in this request
	for i, r := range req.Records {
		a := transport.OfferAnswer{ID: r.ID, Status: gapsync.FileIncoming, Need: []int{}}
		c, have := cur[r.ID]
		partial := r.Status == gapsync.FilePartial
		// Chunks that crossed while the file was staged are the file's
		// when it is still the same size in the same chunks.
		early := have && c.Status == gapsync.FilePartial && c.Size == r.Size && c.ChunkSize == r.ChunkSize
		switch {
		case !partial && have && c.Status == gapsync.FilePublished && c.SHA256 == r.SHA256:
			a.Status, a.LocalKey = gapsync.FilePublished, c.LocalKey
		case partial:
			a.Status = gapsync.FilePartial
			if have && !early {
				if err := g.files.DeleteChunks(ctx, r.ID, nil); err != nil {
					return nil, err
				}
			}
			if early {
				// Chunks of an earlier attempt: the sender resends those
				// whose content changed since.
				if a.Held, err = g.files.ChunkSums(ctx, r.ID); err != nil {
					return nil, err
				}
			}
			// Written every time: its age tells an abandoned one.
			r.Error, r.Attempts, r.LocalKey = "", 0, ""
			puts = append(puts, r)
			needy = append(needy, r)
		default:
			if have && c.SHA256 != r.SHA256 && !early {
				// The file changed under the same reference: its old
				// chunks are of no use.
				if err := g.files.DeleteChunks(ctx, r.ID, nil); err != nil {
					return nil, err
				}
			}
			if !have || c.SHA256 != r.SHA256 {
				r.Status, r.Error, r.Attempts, r.LocalKey = gapsync.FileIncoming, "", 0, ""
				puts = append(puts, r)
			}
			tw, ok, err := g.files.SameContent(ctx, r.SHA256, r.ID)
			if err != nil {
				return nil, err
			}
			// The same bytes are here already, or all here and about to be
			// published (the worker copies them once they are).
			twin := ok && (tw.Status == gapsync.FilePublished && tw.LocalKey != "" || tw.Status == gapsync.FileIncoming)
			if !twin && !offered[r.SHA256] {
				needy = append(needy, r)
			}
			offered[r.SHA256] = true
		}
		resp.Answers[i] = a
	}
	if err := g.files.PutFileRecords(ctx, puts); err != nil {
		return nil, err
	}
	f := &fileFlow{db: g.files}
	need, err := f.missing(ctx, needy...)
	if err != nil {
		return nil, err
	}
	for i := range resp.Answers {
		if n, ok := need[resp.Answers[i].ID]; ok {
			resp.Answers[i].Need = n
		}
	}
	return json.Marshal(resp)
}

// storeChunks is seed 1.3.2 for chunks: write them into the intranet
// database, each checked against its record.
func (g *Gateway) storeChunks(ctx context.Context, body []byte) ([]byte, error) {
	cs, err := transport.DecodeChunks(body, maxChunksPerReq)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.FileID)
	}
	recs, err := g.files.FileRecordsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		r, ok := recs[c.FileID]
		if !ok || r.Origin != gapsync.Internet || r.Status == gapsync.FilePublished {
			return nil, fmt.Errorf("%w: chunk for file %.64q, which was not offered", gapsync.ErrMalformed, c.FileID)
		}
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("chunk for a bad record: %w", err)
		}
		if c.Idx < 0 || c.Idx >= r.Chunks || int64(len(c.Data)) > r.ChunkSize {
			return nil, fmt.Errorf("%w: chunk %d of file %s does not fit it", gapsync.ErrMalformed, c.Idx, c.FileID)
		}
	}
	if err := g.files.PutChunks(ctx, cs); err != nil {
		return nil, err
	}
	return json.Marshal(transport.CountResponse{Stored: len(cs)})
}

// fileRecords is seed 1.4.2: intranet records not yet acknowledged.
func (g *Gateway) fileRecords(ctx context.Context, body []byte) ([]byte, error) {
	var req transport.RecordsRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	recs, err := g.files.UnackedFiles(ctx, gapsync.Intranet, min(max(req.Limit, 1), maxRecordsPerReq))
	if err != nil {
		return nil, err
	}
	return json.Marshal(transport.RecordsResponse{Records: recs})
}

// ackFiles is seed 1.4.3.
func (g *Gateway) ackFiles(ctx context.Context, body []byte) ([]byte, error) {
	req, err := transport.DecodeAck(body)
	if err != nil {
		return nil, err
	}
	return []byte("{}"), g.files.AckFiles(ctx, req.IDs)
}

// intranetFile returns an intranet-origin record, refusing others.
func (g *Gateway) intranetFile(ctx context.Context, req transport.ChunksRequest) (gapsync.FileRecord, error) {
	r, err := g.files.FileRecord(ctx, req.FileID)
	if err != nil || r.Origin != gapsync.Intranet {
		return r, fmt.Errorf("%w: no intranet file %.64q", gapsync.ErrMalformed, req.FileID)
	}
	if err := checkRecord(r, gapsync.Intranet); err != nil {
		return r, err
	}
	if err := g.chunkFits(r); err != nil {
		return r, err
	}
	if len(req.Idxs) > maxChunksPerReq || int64(len(req.Idxs))*r.ChunkSize > 2*maxChunkSize {
		return r, fmt.Errorf("%w: %d chunks in one request", gapsync.ErrTooLarge, len(req.Idxs))
	}
	for _, i := range req.Idxs {
		if i < 0 || i >= r.Chunks {
			return r, fmt.Errorf("%w: chunk %d of file %s, which has %d", gapsync.ErrMalformed, i, r.ID, r.Chunks)
		}
	}
	return r, nil
}

// getChunks is seed 1.4.4c.
func (g *Gateway) getChunks(ctx context.Context, body []byte) ([]byte, error) {
	req, err := transport.DecodeChunksRequest(body)
	if err != nil {
		return nil, err
	}
	if _, err := g.intranetFile(ctx, req); err != nil {
		return nil, err
	}
	keys := make([]gapsync.ChunkKey, len(req.Idxs))
	for i, idx := range req.Idxs {
		keys[i] = gapsync.ChunkKey{FileID: req.FileID, Idx: idx}
	}
	return g.chunkFrame(ctx, keys)
}

// chunkFrame reads the chunks of keys and frames them for an answer.
func (g *Gateway) chunkFrame(ctx context.Context, keys []gapsync.ChunkKey) ([]byte, error) {
	cs, err := g.files.GetChunks(ctx, keys)
	if err != nil {
		return nil, err
	}
	return transport.AppendChunks(nil, cs)
}

// ackChunks is seed 1.4.4d; once every chunk is acknowledged the intranet
// record is marked delivered (published), so its chunks age into a purge.
func (g *Gateway) ackChunks(ctx context.Context, body []byte) ([]byte, error) {
	req, err := transport.DecodeChunksRequest(body)
	if err != nil {
		return nil, err
	}
	r, err := g.intranetFile(ctx, req)
	if err != nil {
		return nil, err
	}
	return []byte("{}"), g.ackFile(ctx, r, req.Idxs)
}

// ackFile acknowledges chunks of one intranet file, and marks the file
// delivered once every chunk is.
func (g *Gateway) ackFile(ctx context.Context, r gapsync.FileRecord, idxs []int) error {
	if err := g.files.AckChunks(ctx, r.ID, idxs); err != nil {
		return err
	}
	if all, err := g.files.AllChunksSynced(ctx, r.ID); err != nil {
		return err
	} else if all && r.Status == gapsync.FileStored {
		r.Status = gapsync.FilePublished
		return putRecord(ctx, g.files, r)
	}
	return nil
}

// chunkFits refuses a file whose chunks are larger than the isolation
// device passes (GatewayOptions.MaxChunkSize).
func (g *Gateway) chunkFits(r gapsync.FileRecord) error {
	if n := g.opts.MaxChunkSize; n > 0 && r.ChunkSize > n {
		return fmt.Errorf("%w: file %s travels in chunks of %d bytes, and the isolation device passes chunks of at most %d (its packet limit, -device-packet): set -chunk-size (FileOptions.ChunkSize) to at most %d on the internet and intranet mains",
			gapsync.ErrTooLarge, r.Ref, r.ChunkSize, n, n)
	}
	return nil
}

// pageFiles checks a page request before anything is read or written:
// every file an intranet file with its bytes staged (stored, or
// delivered and still held), within the isolation device's chunk size,
// each index one of its chunks, and, for a get, at most
// transport.MaxPageBytes of chunks in all. It returns the records by id.
func (g *Gateway) pageFiles(ctx context.Context, req transport.PageRequest, get bool) (map[string]gapsync.FileRecord, error) {
	ids := make([]string, len(req.Files))
	for i, f := range req.Files {
		ids[i] = f.FileID
	}
	recs, err := g.files.FileRecordsByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	var bytes int64
	for _, f := range req.Files {
		r, ok := recs[f.FileID]
		if !ok || r.Origin != gapsync.Intranet {
			return nil, fmt.Errorf("%w: no intranet file %.64q", gapsync.ErrMalformed, f.FileID)
		}
		if r.Status != gapsync.FileStored && r.Status != gapsync.FilePublished {
			return nil, fmt.Errorf("%w: intranet file %s is %s, not staged for delivery", gapsync.ErrMalformed, r.ID, r.Status)
		}
		if err := checkRecord(r, gapsync.Intranet); err != nil {
			return nil, err
		}
		if err := g.chunkFits(r); err != nil {
			return nil, err
		}
		for _, i := range f.Idxs {
			if i < 0 || i >= r.Chunks {
				return nil, fmt.Errorf("%w: chunk %d of file %s, which has %d", gapsync.ErrMalformed, i, r.ID, r.Chunks)
			}
			bytes += chunkLen(r, i)
		}
	}
	if get && bytes > transport.MaxPageBytes {
		return nil, fmt.Errorf("%w: %d bytes of chunks asked for in one page, over %d", gapsync.ErrTooLarge, bytes, transport.MaxPageBytes)
	}
	return recs, nil
}

// chunkLen is the size of chunk i of r by its record: the chunk size,
// or what is left of the file for the last.
func chunkLen(r gapsync.FileRecord, i int) int64 {
	return min(r.ChunkSize, max(r.Size-int64(i)*r.ChunkSize, 0))
}

// getPage answers the chunks of many intranet files (seed 1.4.4c, a page
// at a time). A chunk not held here is left out of the answer: the
// coordinator finds it missing and fails that file alone.
func (g *Gateway) getPage(ctx context.Context, body []byte) ([]byte, error) {
	req, err := transport.DecodePageRequest(body)
	if err != nil {
		return nil, err
	}
	if _, err := g.pageFiles(ctx, req, true); err != nil {
		return nil, err
	}
	ids := make([]string, len(req.Files))
	for i, f := range req.Files {
		ids[i] = f.FileID
	}
	held, err := g.files.HeldChunks(ctx, ids)
	if err != nil {
		return nil, err
	}
	var keys []gapsync.ChunkKey
	for _, f := range req.Files {
		for _, i := range f.Idxs {
			if _, ok := slices.BinarySearch(held[f.FileID], i); ok {
				keys = append(keys, gapsync.ChunkKey{FileID: f.FileID, Idx: i})
			}
		}
	}
	return g.chunkFrame(ctx, keys)
}

// ackPage is seed 1.4.4d for many files: their chunks acknowledged, and
// each file whose chunks are then all acknowledged marked delivered, in
// one intranet transaction when the database can (PageAcker).
func (g *Gateway) ackPage(ctx context.Context, body []byte) ([]byte, error) {
	req, err := transport.DecodePageRequest(body)
	if err != nil {
		return nil, err
	}
	recs, err := g.pageFiles(ctx, req, false)
	if err != nil {
		return nil, err
	}
	if pa, ok := g.files.(PageAcker); ok {
		acks := make(map[string][]int, len(req.Files))
		for _, f := range req.Files {
			acks[f.FileID] = f.Idxs
		}
		return []byte("{}"), pa.AckChunkPage(ctx, acks)
	}
	for _, f := range req.Files {
		if err := g.ackFile(ctx, recs[f.FileID], f.Idxs); err != nil {
			return nil, err
		}
	}
	return []byte("{}"), nil
}
