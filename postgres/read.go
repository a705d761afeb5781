package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"domicile"
)

// Subject returns a subject's row, or ErrNotFound.
func (s *Store) Subject(ctx context.Context, ref domicile.SubjectRef) (*domicile.StoredSubject, error) {
	sub := &domicile.StoredSubject{Ref: ref}
	var j string
	var created, gen int64
	err := s.pool.QueryRow(ctx, `SELECT jurisdiction, created, key_gen FROM subjects WHERE ref=$1`, ref[:]).Scan(&j, &created, &gen)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, wrap("subject", err)
	}
	sub.Jurisdiction, sub.Created, sub.KeyGen = domicile.Jurisdiction(j), nsTime(created), uint8(gen)
	return sub, nil
}

// Record returns a record's row, or ErrNotFound. A deleted record is
// returned with a nil Body so that callers can continue its versions.
func (s *Store) Record(ctx context.Context, ref domicile.SubjectRef, kind, id string) (*domicile.StoredRecord, error) {
	r := &domicile.StoredRecord{Ref: ref, Kind: kind, ID: id}
	var updated int64
	err := s.pool.QueryRow(ctx, `SELECT version, body, fields, updated FROM records WHERE ref=$1 AND kind=$2 AND id=$3`,
		ref[:], []byte(kind), []byte(id)).Scan(&r.Version, &r.Body, &r.Fields, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, wrap("record", err)
	}
	r.Updated = nsTime(updated)
	if len(r.Fields) == 0 {
		r.Fields = nil
	}
	return r, nil
}

// Records lists live records of a subject, optionally of one kind, after
// the cursor (afterKind, afterID), in byte order.
func (s *Store) Records(ctx context.Context, ref domicile.SubjectRef, kind, afterKind, afterID string, limit int) ([]domicile.StoredRecord, error) {
	q := `SELECT kind, id, version, body, fields, updated FROM records WHERE ref=$1 AND body IS NOT NULL AND (kind, id) > ($2, $3)`
	args := []any{ref[:], []byte(afterKind), []byte(afterID)}
	if kind != "" {
		q += ` AND kind=$5`
	}
	q += ` ORDER BY kind, id LIMIT $4`
	args = append(args, max(limit, 0))
	if kind != "" {
		args = append(args, []byte(kind))
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, wrap("records", err)
	}
	defer rows.Close()
	var out []domicile.StoredRecord
	for rows.Next() {
		r := domicile.StoredRecord{Ref: ref}
		var k, id []byte
		var updated int64
		if err := rows.Scan(&k, &id, &r.Version, &r.Body, &r.Fields, &updated); err != nil {
			return nil, wrap("records", err)
		}
		r.Kind, r.ID, r.Updated = string(k), string(id), nsTime(updated)
		if len(r.Fields) == 0 {
			r.Fields = nil
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("records", err)
	}
	return out, nil
}

// Object returns an object's row, or ErrNotFound. A deleted object is
// returned with an empty Blob so callers can continue its versions.
func (s *Store) Object(ctx context.Context, ref domicile.SubjectRef, name string) (*domicile.StoredObject, error) {
	o := &domicile.StoredObject{Ref: ref, Name: name}
	var blob *string
	var gen, updated int64
	err := s.pool.QueryRow(ctx, `SELECT version, content_type, size, sha256, blob, key_gen, updated FROM objects WHERE ref=$1 AND name=$2`,
		ref[:], []byte(name)).Scan(&o.Version, &o.ContentType, &o.Size, &o.SHA256, &blob, &gen, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, wrap("object", err)
	}
	if blob != nil {
		o.Blob = *blob
	}
	o.KeyGen, o.Updated = uint8(gen), nsTime(updated)
	return o, nil
}

// Objects lists live objects of a subject after name, in byte order.
func (s *Store) Objects(ctx context.Context, ref domicile.SubjectRef, after string, limit int) ([]domicile.StoredObject, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, version, content_type, size, sha256, blob, key_gen, updated FROM objects
		WHERE ref=$1 AND blob IS NOT NULL AND name > $2 ORDER BY name LIMIT $3`, ref[:], []byte(after), max(limit, 0))
	if err != nil {
		return nil, wrap("objects", err)
	}
	defer rows.Close()
	var out []domicile.StoredObject
	for rows.Next() {
		o := domicile.StoredObject{Ref: ref}
		var name []byte
		var gen, updated int64
		if err := rows.Scan(&name, &o.Version, &o.ContentType, &o.Size, &o.SHA256, &o.Blob, &gen, &updated); err != nil {
			return nil, wrap("objects", err)
		}
		o.Name, o.KeyGen, o.Updated = string(name), uint8(gen), nsTime(updated)
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("objects", err)
	}
	return out, nil
}

// LogSize returns the number of committed log entries.
func (s *Store) LogSize(ctx context.Context) (int64, error) {
	return s.committed.Load(), nil
}

// Leaves returns leaves [start, end); it fails if the log is shorter.
func (s *Store) Leaves(ctx context.Context, start, end int64) ([][]byte, error) {
	rows, err := s.pool.Query(ctx, `SELECT leaf FROM events WHERE idx >= $1 AND idx < $2 ORDER BY idx`, start, end)
	if err != nil {
		return nil, wrap("leaves", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var l []byte
		if err := rows.Scan(&l); err != nil {
			return nil, wrap("leaves", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("leaves", err)
	}
	if int64(len(out)) != max(end-start, 0) {
		return nil, fmt.Errorf("postgres: leaves [%d,%d): have %d", start, end, len(out))
	}
	return out, nil
}

func scanEvents(rows pgx.Rows) ([]domicile.StoredEvent, error) {
	defer rows.Close()
	var out []domicile.StoredEvent
	for rows.Next() {
		var e domicile.StoredEvent
		var ref []byte
		var t int64
		if err := rows.Scan(&e.Index, &ref, &t, &e.Leaf, &e.Committed, &e.Salt); err != nil {
			return nil, wrap("events", err)
		}
		copy(e.Ref[:], ref)
		e.Time = nsTime(t)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("events", err)
	}
	return out, nil
}

// SubjectEvents lists a subject's events with index > after.
func (s *Store) SubjectEvents(ctx context.Context, ref domicile.SubjectRef, after int64, limit int) ([]domicile.StoredEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT idx, ref, time, leaf, committed, salt FROM events WHERE ref=$1 AND idx > $2 ORDER BY idx LIMIT $3`,
		ref[:], after, max(limit, 0))
	if err != nil {
		return nil, wrap("events", err)
	}
	return scanEvents(rows)
}

// Events lists events with index in [start, end).
func (s *Store) Events(ctx context.Context, start, end int64) ([]domicile.StoredEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT idx, ref, time, leaf, committed, salt FROM events WHERE idx >= $1 AND idx < $2 ORDER BY idx`, start, end)
	if err != nil {
		return nil, wrap("events", err)
	}
	return scanEvents(rows)
}

// PutCheckpoint stores a signed checkpoint durably; a checkpoint of a
// size already stored is kept.
func (s *Store) PutCheckpoint(ctx context.Context, size int64, note []byte) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO checkpoints(size, note) VALUES($1,$2) ON CONFLICT (size) DO NOTHING`, size, note); err != nil {
		return wrap("put checkpoint", err)
	}
	return nil
}

// LatestCheckpoint returns the largest stored checkpoint, or size -1.
func (s *Store) LatestCheckpoint(ctx context.Context) (int64, []byte, error) {
	var size int64
	var note []byte
	err := s.pool.QueryRow(ctx, `SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1`).Scan(&size, &note)
	if errors.Is(err, pgx.ErrNoRows) {
		return -1, nil, nil
	}
	if err != nil {
		return 0, nil, wrap("checkpoint", err)
	}
	return size, note, nil
}

// Meta returns a named value, or ErrNotFound.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT v FROM meta WHERE k=$1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, wrap("meta", err)
	}
	return v, nil
}

// PutMeta stores a named value durably.
func (s *Store) PutMeta(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO meta(k, v) VALUES($1,$2) ON CONFLICT (k) DO UPDATE SET v = excluded.v`, key, value); err != nil {
		return wrap("put meta", err)
	}
	return nil
}

// Request returns a subject's rights request, or ErrNotFound.
func (s *Store) Request(ctx context.Context, ref domicile.SubjectRef, id string) (*domicile.StoredRequest, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, kind, state, received, deadline, version, body, updated FROM requests WHERE ref=$1 AND id=$2`, ref[:], id)
	if err != nil {
		return nil, wrap("request", err)
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
	rows, err := s.pool.Query(ctx, `SELECT id, kind, state, received, deadline, version, body, updated FROM requests
		WHERE ref=$1 AND id > $2 ORDER BY id LIMIT $3`, ref[:], after, max(limit, 0))
	if err != nil {
		return nil, wrap("requests", err)
	}
	return scanRequests(ref, rows)
}

func scanRequests(ref domicile.SubjectRef, rows pgx.Rows) ([]domicile.StoredRequest, error) {
	defer rows.Close()
	var out []domicile.StoredRequest
	for rows.Next() {
		r := domicile.StoredRequest{Ref: ref}
		var received, deadline, updated int64
		if err := rows.Scan(&r.ID, &r.Kind, &r.State, &received, &deadline, &r.Version, &r.Body, &updated); err != nil {
			return nil, wrap("requests", err)
		}
		r.Received, r.Deadline, r.Updated = nsTime(received), nsTime(deadline), nsTime(updated)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("requests", err)
	}
	return out, nil
}

// Receipt returns a stored erasure receipt, or ErrNotFound.
func (s *Store) Receipt(ctx context.Context, id string) (*domicile.StoredReceipt, error) {
	r := &domicile.StoredReceipt{ID: id}
	var t int64
	err := s.pool.QueryRow(ctx, `SELECT time, log_index, body FROM receipts WHERE id=$1`, id).Scan(&t, &r.LogIndex, &r.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, wrap("receipt", err)
	}
	r.Time = nsTime(t)
	return r, nil
}
