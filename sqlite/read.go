package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"domicile"
)

// readStmts are the hot read statements, prepared once (database/sql
// prepares each on a pooled connection the first time it runs there).
type readStmts struct {
	subject, record, object *sql.Stmt
}

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&r.subject, `SELECT jurisdiction, created, key_gen FROM subjects WHERE ref=?`},
		{&r.record, `SELECT version, body, fields, updated FROM records WHERE ref=? AND kind=? AND id=?`},
		{&r.object, `SELECT version, content_type, size, sha256, blob, key_gen, updated FROM objects WHERE ref=? AND name=?`},
	} {
		st, err := db.PrepareContext(ctx, p.q)
		if err != nil {
			return fmt.Errorf("sqlite: prepare: %w", err)
		}
		*p.st = st
	}
	return nil
}

// Subject returns a subject's row.
func (s *Store) Subject(ctx context.Context, ref domicile.SubjectRef) (*domicile.StoredSubject, error) {
	sub := &domicile.StoredSubject{Ref: ref}
	var j string
	var created int64
	var gen int
	err := s.rq.subject.QueryRowContext(ctx, ref[:]).Scan(&j, &created, &gen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: subject: %w", err)
	}
	sub.Jurisdiction, sub.Created, sub.KeyGen = domicile.Jurisdiction(j), nsTime(created), uint8(gen)
	return sub, nil
}

// Record returns a record's row, or ErrNotFound. A deleted record is
// returned with a nil Body so that callers can continue its versions.
func (s *Store) Record(ctx context.Context, ref domicile.SubjectRef, kind, id string) (*domicile.StoredRecord, error) {
	r := &domicile.StoredRecord{Ref: ref, Kind: kind, ID: id}
	var fields string
	var updated int64
	err := s.rq.record.QueryRowContext(ctx, ref[:], kind, id).Scan(&r.Version, &r.Body, &fields, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: record: %w", err)
	}
	r.Fields, r.Updated = splitFields(fields), nsTime(updated)
	return r, nil
}

func splitFields(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// Records lists live records of a subject, optionally of one kind, after
// the cursor (afterKind, afterID).
func (s *Store) Records(ctx context.Context, ref domicile.SubjectRef, kind, afterKind, afterID string, limit int) ([]domicile.StoredRecord, error) {
	q := `SELECT kind, id, version, body, fields, updated FROM records WHERE ref=? AND body IS NOT NULL AND (kind, id) > (?, ?)`
	args := []any{ref[:], afterKind, afterID}
	if kind != "" {
		q += ` AND kind=?`
		args = append(args, kind)
	}
	q += ` ORDER BY kind, id LIMIT ?`
	args = append(args, limit)
	rows, err := s.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: records: %w", err)
	}
	defer rows.Close()
	var out []domicile.StoredRecord
	for rows.Next() {
		r := domicile.StoredRecord{Ref: ref}
		var fields string
		var updated int64
		if err := rows.Scan(&r.Kind, &r.ID, &r.Version, &r.Body, &fields, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: records: %w", err)
		}
		r.Fields, r.Updated = splitFields(fields), nsTime(updated)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Object returns an object's row, or ErrNotFound. A deleted object is
// returned with an empty Blob so callers can continue its versions.
func (s *Store) Object(ctx context.Context, ref domicile.SubjectRef, name string) (*domicile.StoredObject, error) {
	o := &domicile.StoredObject{Ref: ref, Name: name}
	var blob sql.NullString
	var gen int
	var updated int64
	err := s.rq.object.QueryRowContext(ctx, ref[:], name).Scan(&o.Version, &o.ContentType, &o.Size, &o.SHA256, &blob, &gen, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: object: %w", err)
	}
	o.Blob, o.KeyGen, o.Updated = blob.String, uint8(gen), nsTime(updated)
	return o, nil
}

// Objects lists live objects of a subject after name.
func (s *Store) Objects(ctx context.Context, ref domicile.SubjectRef, after string, limit int) ([]domicile.StoredObject, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT name, version, content_type, size, sha256, blob, key_gen, updated FROM objects
		WHERE ref=? AND blob IS NOT NULL AND name > ? ORDER BY name LIMIT ?`, ref[:], after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: objects: %w", err)
	}
	defer rows.Close()
	var out []domicile.StoredObject
	for rows.Next() {
		o := domicile.StoredObject{Ref: ref}
		var gen int
		var updated int64
		if err := rows.Scan(&o.Name, &o.Version, &o.ContentType, &o.Size, &o.SHA256, &o.Blob, &gen, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: objects: %w", err)
		}
		o.KeyGen, o.Updated = uint8(gen), nsTime(updated)
		out = append(out, o)
	}
	return out, rows.Err()
}

// LogSize returns the number of committed log entries: those whose
// commit the writer has seen succeed, which every reader of the store then
// sees too.
func (s *Store) LogSize(ctx context.Context) (int64, error) {
	return s.committed.Load(), nil
}

// Leaves returns leaves [start, end).
func (s *Store) Leaves(ctx context.Context, start, end int64) ([][]byte, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT leaf FROM events WHERE idx >= ? AND idx < ? ORDER BY idx`, start, end)
	if err != nil {
		return nil, fmt.Errorf("sqlite: leaves: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var l []byte
		if err := rows.Scan(&l); err != nil {
			return nil, fmt.Errorf("sqlite: leaves: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: leaves: %w", err)
	}
	if int64(len(out)) != end-start {
		return nil, fmt.Errorf("sqlite: leaves [%d,%d): have %d", start, end, len(out))
	}
	return out, nil
}

func (s *Store) scanEvents(rows *sql.Rows) ([]domicile.StoredEvent, error) {
	defer rows.Close()
	var out []domicile.StoredEvent
	for rows.Next() {
		var e domicile.StoredEvent
		var ref []byte
		var t int64
		if err := rows.Scan(&e.Index, &ref, &t, &e.Leaf, &e.Committed, &e.Salt); err != nil {
			return nil, fmt.Errorf("sqlite: events: %w", err)
		}
		copy(e.Ref[:], ref)
		e.Time = nsTime(t)
		out = append(out, e)
	}
	return out, rows.Err()
}

// SubjectEvents lists a subject's events after index after.
func (s *Store) SubjectEvents(ctx context.Context, ref domicile.SubjectRef, after int64, limit int) ([]domicile.StoredEvent, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT idx, ref, time, leaf, committed, salt FROM events WHERE ref=? AND idx > ? ORDER BY idx LIMIT ?`, ref[:], after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	return s.scanEvents(rows)
}

// Events lists events with index in [start, end).
func (s *Store) Events(ctx context.Context, start, end int64) ([]domicile.StoredEvent, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT idx, ref, time, leaf, committed, salt FROM events WHERE idx >= ? AND idx < ? ORDER BY idx`, start, end)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	return s.scanEvents(rows)
}

// PutCheckpoint stores a signed checkpoint durably.
func (s *Store) PutCheckpoint(ctx context.Context, size int64, note []byte) error {
	_, err := s.cdb.ExecContext(ctx, `INSERT OR IGNORE INTO checkpoints(size, note) VALUES(?,?)`, size, note)
	if err != nil {
		return fmt.Errorf("sqlite: put checkpoint: %w", err)
	}
	return nil
}

// LatestCheckpoint returns the largest stored checkpoint, or size -1.
func (s *Store) LatestCheckpoint(ctx context.Context) (int64, []byte, error) {
	var size int64
	var note []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1`).Scan(&size, &note)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("sqlite: checkpoint: %w", err)
	}
	return size, note, nil
}

// Meta returns a named value, or ErrNotFound.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT v FROM meta WHERE k=?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: meta: %w", err)
	}
	return v, nil
}

// PutMeta stores a named value durably.
func (s *Store) PutMeta(ctx context.Context, key string, value []byte) error {
	if _, err := s.cdb.ExecContext(ctx, `INSERT OR REPLACE INTO meta(k, v) VALUES(?,?)`, key, value); err != nil {
		return fmt.Errorf("sqlite: put meta: %w", err)
	}
	return nil
}

// Request returns a subject's rights request, or ErrNotFound.
func (s *Store) Request(ctx context.Context, ref domicile.SubjectRef, id string) (*domicile.StoredRequest, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, kind, state, received, deadline, version, body, updated FROM requests WHERE ref=? AND id=?`, ref[:], id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: request: %w", err)
	}
	out, err := scanRequests(ref, rows)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, domicile.ErrNotFound
	}
	return &out[0], nil
}

// Requests lists a subject's rights requests by id, after the id after.
func (s *Store) Requests(ctx context.Context, ref domicile.SubjectRef, after string, limit int) ([]domicile.StoredRequest, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, kind, state, received, deadline, version, body, updated FROM requests
		WHERE ref=? AND id > ? ORDER BY id LIMIT ?`, ref[:], after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: requests: %w", err)
	}
	return scanRequests(ref, rows)
}

func scanRequests(ref domicile.SubjectRef, rows *sql.Rows) ([]domicile.StoredRequest, error) {
	defer rows.Close()
	var out []domicile.StoredRequest
	for rows.Next() {
		r := domicile.StoredRequest{Ref: ref}
		var received, deadline, updated int64
		if err := rows.Scan(&r.ID, &r.Kind, &r.State, &received, &deadline, &r.Version, &r.Body, &updated); err != nil {
			return nil, fmt.Errorf("sqlite: requests: %w", err)
		}
		r.Received, r.Deadline, r.Updated = nsTime(received), nsTime(deadline), nsTime(updated)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Receipt returns a stored erasure receipt, or ErrNotFound.
func (s *Store) Receipt(ctx context.Context, id string) (*domicile.StoredReceipt, error) {
	r := &domicile.StoredReceipt{ID: id}
	var t int64
	err := s.rdb.QueryRowContext(ctx, `SELECT time, log_index, body FROM receipts WHERE id=?`, id).Scan(&t, &r.LogIndex, &r.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: receipt: %w", err)
	}
	r.Time = nsTime(t)
	return r, nil
}
