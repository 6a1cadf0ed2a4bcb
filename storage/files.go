package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/gapsync/gapsync"
	"github.com/gapsync/gapsync/rules"
)

// FileRecordRow is a row of file_record: one referenced file, in the
// database of each side it reaches.
type FileRecordRow struct {
	bun.BaseModel `bun:"table:file_record"`

	ID        string    `bun:"id,pk,type:varchar(64)"`
	Origin    string    `bun:"origin,type:varchar(16),notnull"`
	Ref       string    `bun:"ref,type:text,notnull"`
	Size      int64     `bun:"size,notnull"`
	MD5       string    `bun:"md5,type:varchar(32),notnull"`
	SHA256    string    `bun:"sha256,type:varchar(64),notnull"`
	SM3       string    `bun:"sm3,type:varchar(64),notnull"` // empty unless the zones use SM3 digests
	ChunkSize int64     `bun:"chunk_size,notnull"`
	Chunks    int       `bun:"chunks,notnull"`
	Status    string    `bun:"status,type:varchar(16),notnull"`
	Error     string    `bun:"error,type:text,notnull"`
	Attempts  int       `bun:"attempts,notnull"`
	LocalKey  string    `bun:"local_key,type:text,notnull"`
	Acked     bool      `bun:"acked,notnull"`
	UpdatedAt time.Time `bun:"updated_at,type:datetime(6),notnull"`
}

// FileChunkRow is a row of file_chunk: one ordered piece of a file's bytes.
type FileChunkRow struct {
	bun.BaseModel `bun:"table:file_chunk"`

	FileID string `bun:"file_id,pk,type:varchar(64)"`
	Idx    int    `bun:"idx,pk"`
	Size   int64  `bun:"size,notnull"`
	MD5    string `bun:"md5,type:varchar(32),notnull"`
	SHA256 string `bun:"sha256,type:varchar(64),notnull"`
	Data   []byte `bun:"data,type:longblob"`
	Synced bool   `bun:"synced,notnull"`
}

// PathMappingRow is a row of path_mapping: a reference as the other side's
// rows hold it (Foreign) and the key of this side's published copy (Local).
// Rows applied here have their foreign references replaced by local ones;
// rows read here for sending get local copies' references turned back.
type PathMappingRow struct {
	bun.BaseModel `bun:"table:path_mapping"`

	ForeignHash string `bun:"foreign_hash,pk,type:varchar(64)"`
	LocalHash   string `bun:"local_hash,type:varchar(64),notnull"`
	Foreign     string `bun:"foreign_ref,type:text,notnull"`
	Local       string `bun:"local_ref,type:text,notnull"`
}

// RefOriginRow is a row of sync_ref_origin: a row here (table and key)
// holds a reference (Ref) that arrived from the other side, in a row sync
// applied. That reference names the other side's file, whatever its
// text: this side never stages it from its own store, and when the other
// side's file is published here, only rows with such an entry for it are
// rewritten (a row that names a same-named file of this side's own is
// not). CanonHash is the hash of the reference's canonical form
// (gapsync.CanonicalRef), which finds every spelling of one file. The
// entries of a row are replaced each time sync applies it.
type RefOriginRow struct {
	bun.BaseModel `bun:"table:sync_ref_origin"`

	TableName string `bun:"table_name,pk,type:varchar(64)"`
	KeyHash   string `bun:"key_hash,pk,type:varchar(32)"`
	RefHash   string `bun:"ref_hash,pk,type:varchar(64)"`
	CanonHash string `bun:"canon_hash,type:varchar(64),notnull"`
	Ref       string `bun:"ref,type:text,notnull"`
}

func init() {
	models = append(models, (*FileRecordRow)(nil), (*FileChunkRow)(nil), (*PathMappingRow)(nil), (*RefOriginRow)(nil))
	indexes = append(indexes,
		struct{ name, table, cols string }{"file_record_status", "file_record", "origin, status"},
		struct{ name, table, cols string }{"file_record_sha", "file_record", "sha256"},
		struct{ name, table, cols string }{"file_record_size", "file_record", "size"},
		struct{ name, table, cols string }{"path_mapping_local", "path_mapping", "local_hash"},
		struct{ name, table, cols string }{"sync_ref_origin_canon", "sync_ref_origin", "canon_hash"},
	)
}

func refHash(s string) string { return rules.RefHash(s) }

// canonHash hashes a reference's canonical form: the same for every
// spelling of one file.
func canonHash(ref string) string { return refHash(gapsync.CanonicalRef(ref)) }

func (r FileRecordRow) record() gapsync.FileRecord {
	return gapsync.FileRecord{ID: r.ID, Origin: gapsync.Side(r.Origin), Ref: r.Ref, Size: r.Size, MD5: r.MD5, SHA256: r.SHA256, SM3: r.SM3,
		ChunkSize: r.ChunkSize, Chunks: r.Chunks, Status: r.Status, Error: r.Error, Attempts: r.Attempts, LocalKey: r.LocalKey,
		Changed: r.UpdatedAt}
}

func (db *DB) insertIgnore(q *bun.InsertQuery, key ...string) *bun.InsertQuery {
	return db.onConflict(q, key, nil)
}

// onConflict ends a bun INSERT with the dialect's conflict clause (see
// dialect.onConflict).
func (db *DB) onConflict(q *bun.InsertQuery, key, update []string) *bun.InsertQuery {
	return q.On(strings.TrimPrefix(db.d.onConflict(key, update), "ON "))
}

// NoteFiles records references found in rows sent from this side (seed
// 1.1.4): one record per distinct reference, created once; a reference
// already noted is not noted again. References that are this side's
// copies of the other side's files are skipped: they travel back as the
// other side's own references. It returns how many records are new.
func (db *DB) NoteFiles(ctx context.Context, origin gapsync.Side, refs []string) (int, error) {
	if len(refs) == 0 {
		return 0, nil
	}
	copies, err := db.mapped(ctx, "local_hash", refs)
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	var rows []FileRecordRow
	for _, ref := range refs {
		if _, ok := copies[ref]; !ok {
			rows = append(rows, FileRecordRow{ID: gapsync.FileID(origin, ref), Origin: string(origin), Ref: ref, Status: gapsync.FileExtracted, UpdatedAt: now})
		}
	}
	n := 0
	for len(rows) > 0 {
		part := rows[:min(len(rows), batchRows)]
		rows = rows[len(part):]
		res, err := db.insertIgnore(db.bun.NewInsert().Model(&part), "id").Exec(ctx)
		if err != nil {
			return n, fmt.Errorf("storage: note %d files: %w", len(part), err)
		}
		k, _ := res.RowsAffected() // inserted rows only: a duplicate changes nothing
		n += int(k)
	}
	return n, nil
}

// batchRows is how many rows one multi-row statement of the file tables
// carries at most.
const batchRows = 256

// FileRecords returns up to limit records from origin with one of the
// statuses, oldest change first.
func (db *DB) FileRecords(ctx context.Context, origin gapsync.Side, limit int, statuses ...string) ([]gapsync.FileRecord, error) {
	var rows []FileRecordRow
	q := db.bun.NewSelect().Model(&rows).Where("origin = ?", string(origin)).Where("status IN (?)", bun.List(statuses)).OrderExpr("updated_at, id")
	if limit > 0 {
		q = q.Limit(int64(limit))
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read file records: %w", err)
	}
	out := make([]gapsync.FileRecord, len(rows))
	for i, r := range rows {
		out[i] = r.record()
	}
	return out, nil
}

// FileRecord returns one record, or an error wrapping sql.ErrNoRows.
func (db *DB) FileRecord(ctx context.Context, id string) (gapsync.FileRecord, error) {
	var r FileRecordRow
	if err := db.bun.NewSelect().Model(&r).Where("id = ?", id).Scan(ctx); err != nil {
		return gapsync.FileRecord{}, fmt.Errorf("storage: file record %s: %w", id, err)
	}
	return r.record(), nil
}

// PutFileRecords writes records as given (the receiving side's copies,
// or status changes), each replacing the row with the same id, many to a
// statement.
func (db *DB) PutFileRecords(ctx context.Context, fs []gapsync.FileRecord) error {
	now := time.Now().UTC()
	for len(fs) > 0 {
		part := fs[:min(len(fs), batchRows)]
		fs = fs[len(part):]
		rows := make([]FileRecordRow, len(part))
		for i, f := range part {
			rows[i] = FileRecordRow{ID: f.ID, Origin: string(f.Origin), Ref: f.Ref, Size: f.Size, MD5: f.MD5, SHA256: f.SHA256, SM3: f.SM3,
				ChunkSize: f.ChunkSize, Chunks: f.Chunks, Status: f.Status, Error: f.Error, Attempts: f.Attempts, LocalKey: f.LocalKey,
				UpdatedAt: now}
		}
		q := db.bun.NewInsert().Model(&rows)
		cols := []string{"origin", "ref", "size", "md5", "sha256", "sm3", "chunk_size", "chunks", "status", "error", "attempts", "local_key", "updated_at"}
		q = db.onConflict(q, []string{"id"}, cols)
		if _, err := q.Exec(ctx); err != nil {
			return fmt.Errorf("storage: write %d file records (first %s): %w", len(part), part[0].ID, err)
		}
	}
	return nil
}

// FileRecordsByID returns the records here among ids, by id; ids not held
// here are absent from the map.
func (db *DB) FileRecordsByID(ctx context.Context, ids []string) (map[string]gapsync.FileRecord, error) {
	out := make(map[string]gapsync.FileRecord, len(ids))
	for len(ids) > 0 {
		part := ids[:min(len(ids), batchRows)]
		ids = ids[len(part):]
		var rows []FileRecordRow
		if err := db.bun.NewSelect().Model(&rows).Where("id IN (?)", bun.List(part)).Scan(ctx); err != nil {
			return nil, fmt.Errorf("storage: read file records: %w", err)
		}
		for _, r := range rows {
			out[r.ID] = r.record()
		}
	}
	return out, nil
}

// AckFiles marks records as received by the other side (seed 1.4.3).
func (db *DB) AckFiles(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := db.bun.NewUpdate().Model((*FileRecordRow)(nil)).Set("acked = ?", true).Where("id IN (?)", bun.List(ids)).Exec(ctx); err != nil {
		return fmt.Errorf("storage: ack files: %w", err)
	}
	return nil
}

// UnackedFiles returns stored records of origin that the other side has
// not acknowledged yet.
func (db *DB) UnackedFiles(ctx context.Context, origin gapsync.Side, limit int) ([]gapsync.FileRecord, error) {
	var rows []FileRecordRow
	q := db.bun.NewSelect().Model(&rows).Where("origin = ?", string(origin)).Where("status = ?", gapsync.FileStored).
		Where("acked = ?", false).OrderExpr("updated_at, id").Limit(int64(limit))
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: read unacknowledged files: %w", err)
	}
	out := make([]gapsync.FileRecord, len(rows))
	for i, r := range rows {
		out[i] = r.record()
	}
	return out, nil
}

// PutChunks stores chunks (replacing earlier copies, which repairs a
// corrupted one) through prepared statements, so the bytes travel in the
// binary protocol, many to a statement (up to batchRows, and up to
// chunkStatementBytes of data, so a statement fits max_allowed_packet). Each statement is atomic; a failure leaves the
// chunks of earlier statements stored, which a retry overwrites.
func (db *DB) PutChunks(ctx context.Context, cs []gapsync.Chunk) error {
	for len(cs) > 0 {
		n, size := 0, 0
		for n < len(cs) && n < batchRows && (n == 0 || size+len(cs[n].Data) <= chunkStatementBytes) {
			size += len(cs[n].Data)
			n++
		}
		part := cs[:n]
		cs = cs[n:]
		var q strings.Builder
		q.WriteString("INSERT INTO file_chunk (file_id, idx, size, md5, sha256, data, synced) VALUES ")
		args := make([]any, 0, 7*len(part))
		for i, c := range part {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?,?,?,?)")
			data := c.Data
			if data == nil {
				data = []byte{}
			}
			args = append(args, c.FileID, c.Idx, int64(len(c.Data)), c.MD5, c.SHA256, data, false)
		}
		q.WriteString(" " + db.d.onConflict([]string{"file_id", "idx"}, []string{"size", "md5", "sha256", "data"}))
		if _, err := db.sql.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("storage: put %d chunks (first %s/%d): %w", len(part), part[0].FileID, part[0].Idx, err)
		}
	}
	return nil
}

// chunkStatementBytes caps the chunk data of one PutChunks statement.
const chunkStatementBytes = 8 << 20

// GetChunk reads one chunk; a missing one is an error wrapping sql.ErrNoRows.
func (db *DB) GetChunk(ctx context.Context, fileID string, idx int) (gapsync.Chunk, error) {
	c := gapsync.Chunk{FileID: fileID, Idx: idx}
	err := db.sql.QueryRowContext(ctx, "SELECT md5, sha256, data FROM file_chunk WHERE file_id = ? AND idx = ?", fileID, idx).Scan(&c.MD5, &c.SHA256, &c.Data)
	if err != nil {
		return c, fmt.Errorf("storage: chunk %s/%d: %w", fileID, idx, err)
	}
	return c, nil
}

// GetChunks reads the given chunks, in the order given, many to a
// statement; a missing one is an error wrapping sql.ErrNoRows. Keep the
// total small (a request's worth): all of it is held in memory.
func (db *DB) GetChunks(ctx context.Context, keys []gapsync.ChunkKey) ([]gapsync.Chunk, error) {
	got := make(map[gapsync.ChunkKey]gapsync.Chunk, len(keys))
	for rest := keys; len(rest) > 0; {
		part := rest[:min(len(rest), batchRows)]
		rest = rest[len(part):]
		kv := make([][]any, len(part))
		for i, k := range part {
			kv[i] = []any{k.FileID, k.Idx}
		}
		where, args := keyMatch(db.d, "", []string{"file_id", "idx"}, kv)
		rows, err := db.sql.QueryContext(ctx, "SELECT file_id, idx, md5, sha256, data FROM file_chunk WHERE "+where, args...)
		if err != nil {
			return nil, fmt.Errorf("storage: read %d chunks: %w", len(part), err)
		}
		for rows.Next() {
			var c gapsync.Chunk
			if err := rows.Scan(&c.FileID, &c.Idx, &c.MD5, &c.SHA256, &c.Data); err != nil {
				rows.Close()
				return nil, fmt.Errorf("storage: read chunks: %w", err)
			}
			got[gapsync.ChunkKey{FileID: c.FileID, Idx: c.Idx}] = c
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("storage: read chunks: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("storage: read chunks: %w", err)
		}
	}
	out := make([]gapsync.Chunk, len(keys))
	for i, k := range keys {
		c, ok := got[k]
		if !ok {
			return nil, fmt.Errorf("storage: chunk %s/%d: %w", k.FileID, k.Idx, sql.ErrNoRows)
		}
		if c.Data == nil {
			c.Data = []byte{}
		}
		out[i] = c
	}
	return out, nil
}

// HeldChunks returns, for each of ids with chunks here, the indexes of
// those chunks in order.
func (db *DB) HeldChunks(ctx context.Context, ids []string) (map[string][]int, error) {
	out := map[string][]int{}
	for len(ids) > 0 {
		part := ids[:min(len(ids), batchRows)]
		ids = ids[len(part):]
		var rows []FileChunkRow
		if err := db.bun.NewSelect().Model(&rows).Column("file_id", "idx").Where("file_id IN (?)", bun.List(part)).
			OrderExpr("file_id, idx").Scan(ctx); err != nil {
			return nil, fmt.Errorf("storage: chunk lists: %w", err)
		}
		for _, r := range rows {
			out[r.FileID] = append(out[r.FileID], r.Idx)
		}
	}
	return out, nil
}

// ChunkSums returns the SHA-256 of each chunk of a file held here, by
// index.
func (db *DB) ChunkSums(ctx context.Context, fileID string) (map[int]string, error) {
	var rows []FileChunkRow
	if err := db.bun.NewSelect().Model(&rows).Column("idx", "sha256").Where("file_id = ?", fileID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("storage: chunk sums of %s: %w", fileID, err)
	}
	out := make(map[int]string, len(rows))
	for _, r := range rows {
		out[r.Idx] = r.SHA256
	}
	return out, nil
}

// AckChunks marks chunks as received by the other side (seed 1.4.4d).
func (db *DB) AckChunks(ctx context.Context, fileID string, idxs []int) error {
	if len(idxs) == 0 {
		return nil
	}
	if _, err := db.bun.NewUpdate().Model((*FileChunkRow)(nil)).Set("synced = ?", true).
		Where("file_id = ?", fileID).Where("idx IN (?)", bun.List(idxs)).Exec(ctx); err != nil {
		return fmt.Errorf("storage: ack chunks of %s: %w", fileID, err)
	}
	return nil
}

// AckChunkPage is AckChunks for many files at once, and the delivery
// that follows it, in one transaction: the given chunks of each file are
// marked received by the other side, then every one of the files whose
// record is stored (gapsync.FileStored) and whose chunks are now all
// received is marked delivered (gapsync.FilePublished), as
// AllChunksSynced and a status change would, file by file. A file given
// no indexes (an empty file) is only delivered. Either all of it is
// written or, on an error, nothing; a retry is safe.
func (db *DB) AckChunkPage(ctx context.Context, acks map[string][]int) error {
	if len(acks) == 0 {
		return nil
	}
	// The files that name the same indexes share a clause: a page of
	// small files is one "file_id IN (…) AND idx IN (0)".
	byIdxs := map[string][]string{}
	idxsOf := map[string][]int{}
	ids := make([]string, 0, len(acks))
	for id, idxs := range acks {
		ids = append(ids, id)
		if len(idxs) == 0 {
			continue
		}
		k := fmt.Sprint(idxs)
		byIdxs[k] = append(byIdxs[k], id)
		idxsOf[k] = idxs
	}
	err := db.bun.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if len(byIdxs) > 0 {
			q := tx.NewUpdate().Model((*FileChunkRow)(nil)).Set("synced = ?", true)
			q = q.WhereGroup(" AND ", func(q *bun.UpdateQuery) *bun.UpdateQuery {
				for k, files := range byIdxs {
					q = q.WhereOr("(file_id IN (?) AND idx IN (?))", bun.List(files), bun.List(idxsOf[k]))
				}
				return q
			})
			if _, err := q.Exec(ctx); err != nil {
				return err
			}
		}
		_, err := tx.NewUpdate().Model((*FileRecordRow)(nil)).
			Set("status = ?", gapsync.FilePublished).Set("updated_at = ?", time.Now().UTC()).
			Where("id IN (?)", bun.List(ids)).Where("status = ?", gapsync.FileStored).
			Where("NOT EXISTS (SELECT 1 FROM file_chunk WHERE file_chunk.file_id = ?TableAlias.id AND file_chunk.synced = ?)", false).
			Exec(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("storage: ack the chunks of %d files: %w", len(acks), err)
	}
	return nil
}

// DeleteChunks removes chunks of a file: the given indexes, or all when
// idxs is nil (purging a published file, or dropping corrupt pieces so
// that they are sent again).
func (db *DB) DeleteChunks(ctx context.Context, fileID string, idxs []int) error {
	q := db.bun.NewDelete().Model((*FileChunkRow)(nil)).Where("file_id = ?", fileID)
	if idxs != nil {
		if len(idxs) == 0 {
			return nil
		}
		q = q.Where("idx IN (?)", bun.List(idxs))
	}
	if _, err := q.Exec(ctx); err != nil {
		return fmt.Errorf("storage: delete chunks of %s: %w", fileID, err)
	}
	return nil
}

// SameContent returns a record here, other than id, with the given SHA-256
// whose bytes are complete: published with a local key (preferred),
// stored, or incoming with every chunk held (about to be published).
func (db *DB) SameContent(ctx context.Context, sha, id string) (gapsync.FileRecord, bool, error) {
	var r FileRecordRow
	err := db.bun.NewSelect().Model(&r).Where("sha256 = ?", sha).Where("id <> ?", id).
		Where("(status = ? OR (status = ? AND local_key <> '') OR (status = ? AND chunks = (SELECT COUNT(*) FROM file_chunk WHERE file_chunk.file_id = ?TableAlias.id)))",
			gapsync.FileStored, gapsync.FilePublished, gapsync.FileIncoming).
		OrderExpr("CASE status WHEN ? THEN 0 WHEN ? THEN 1 ELSE 2 END, id", gapsync.FilePublished, gapsync.FileStored).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return gapsync.FileRecord{}, false, nil
	}
	if err != nil {
		return gapsync.FileRecord{}, false, fmt.Errorf("storage: find content %s: %w", sha, err)
	}
	return r.record(), true, nil
}

// PublishedContent returns, for each of shas that a record here has
// published with a local key, one such record (the first by id): what
// SameContent prefers, for many files in a few statements.
func (db *DB) PublishedContent(ctx context.Context, shas []string) (map[string]gapsync.FileRecord, error) {
	out := map[string]gapsync.FileRecord{}
	for len(shas) > 0 {
		part := shas[:min(len(shas), batchRows)]
		shas = shas[len(part):]
		var rows []FileRecordRow
		if err := db.bun.NewSelect().Model(&rows).Where("sha256 IN (?)", bun.List(part)).Where("status = ?", gapsync.FilePublished).
			Where("local_key <> ''").OrderExpr("id").Scan(ctx); err != nil {
			return nil, fmt.Errorf("storage: find published content: %w", err)
		}
		for _, r := range rows {
			if _, ok := out[r.SHA256]; !ok {
				out[r.SHA256] = r.record()
			}
		}
	}
	return out, nil
}

// SameSize reports whether a record here other than id has a staged or
// published file of exactly size bytes: a file that may have the same
// content, which the sender then does not send before it knows the sums.
func (db *DB) SameSize(ctx context.Context, size int64, id string) (bool, error) {
	n, err := db.bun.NewSelect().Model((*FileRecordRow)(nil)).Where("size = ?", size).Where("id <> ?", id).
		Where("status IN (?)", bun.List([]string{gapsync.FileStored, gapsync.FilePublished})).Limit(1).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("storage: find files of %d bytes: %w", size, err)
	}
	return n > 0, nil
}

// AddMappings records that the other side's references (the keys) are
// published here under the local ones (the values), many to a statement.
func (db *DB) AddMappings(ctx context.Context, m map[string]string) error {
	rows := make([]PathMappingRow, 0, len(m))
	for foreign, local := range m {
		rows = append(rows, PathMappingRow{ForeignHash: canonHash(foreign), LocalHash: refHash(local), Foreign: foreign, Local: local})
	}
	for len(rows) > 0 {
		part := rows[:min(len(rows), batchRows)]
		rows = rows[len(part):]
		q := db.bun.NewInsert().Model(&part)
		q = db.onConflict(q, []string{"foreign_hash"}, []string{"local_hash", "local_ref"})
		if _, err := q.Exec(ctx); err != nil {
			return fmt.Errorf("storage: add %d path mappings: %w", len(part), err)
		}
	}
	return nil
}

// mapped looks refs up in path_mapping by the given hash column and returns
// ref → the other end of its mapping.
func (db *DB) mapped(ctx context.Context, by string, refs []string) (map[string]string, error) {
	out := map[string]string{}
	if len(refs) == 0 {
		return out, nil
	}
	hash := refHash
	if by == "foreign_hash" {
		hash = canonHash // any spelling of the other side's reference
	}
	wanted := map[string][]string{} // hash → the refs asked for with it
	hashes := make([]string, 0, len(refs))
	for _, r := range refs {
		h := hash(r)
		if _, ok := wanted[h]; !ok {
			hashes = append(hashes, h)
		}
		wanted[h] = append(wanted[h], r)
	}
	for len(hashes) > 0 {
		part := hashes[:min(len(hashes), batchRows)]
		hashes = hashes[len(part):]
		var rows []PathMappingRow
		if err := db.bun.NewSelect().Model(&rows).Where(by+" IN (?)", bun.List(part)).Scan(ctx); err != nil {
			return nil, fmt.Errorf("storage: read path mapping: %w", err)
		}
		for _, r := range rows {
			if by == "foreign_hash" {
				for _, ref := range wanted[r.ForeignHash] {
					out[ref] = r.Local
				}
			} else {
				out[r.Local] = r.Foreign
			}
		}
	}
	return out, nil
}

// MapForeign returns, for those of refs that are the other side's files
// published here, this side's reference.
func (db *DB) MapForeign(ctx context.Context, refs []string) (map[string]string, error) {
	return db.mapped(ctx, "foreign_hash", refs)
}

// MapLocal returns, for those of refs that are this side's copies of the
// other side's files, the other side's reference.
func (db *DB) MapLocal(ctx context.Context, refs []string) (map[string]string, error) {
	return db.mapped(ctx, "local_hash", refs)
}

// PurgeChunks deletes the chunks of files with the given status last
// changed before the given time: published files, whose bytes live in a
// store now (seed: chunks are kept only as long as the transfer needs
// them, plus a retention), or partial ones whose sender gave up.
func (db *DB) PurgeChunks(ctx context.Context, status string, before time.Time) (int, error) {
	var ids []string
	if err := db.bun.NewSelect().Model((*FileRecordRow)(nil)).Column("id").Where("status = ?", status).
		Where("updated_at < ?", before.UTC()).Scan(ctx, &ids); err != nil {
		return 0, fmt.Errorf("storage: find purgeable files: %w", err)
	}
	n := 0
	for _, id := range ids {
		res, err := db.bun.NewDelete().Model((*FileChunkRow)(nil)).Where("file_id = ?", id).Exec(ctx)
		if err != nil {
			return n, fmt.Errorf("storage: purge chunks of %s: %w", id, err)
		}
		k, _ := res.RowsAffected()
		n += int(k)
	}
	return n, nil
}

// AllChunksSynced reports whether every chunk of a file held here has been
// acknowledged by the other side.
func (db *DB) AllChunksSynced(ctx context.Context, fileID string) (bool, error) {
	var n int
	if err := db.sql.QueryRowContext(ctx, "SELECT COUNT(*) FROM file_chunk WHERE file_id = ? AND synced = ?", fileID, false).Scan(&n); err != nil {
		return false, fmt.Errorf("storage: chunk state of %s: %w", fileID, err)
	}
	return n == 0, nil
}
