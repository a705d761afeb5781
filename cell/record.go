package cell

import (
	"context"
	"errors"

	"domicile"
	"domicile/envelope"
)

// maxRetries bounds retries of unconditional writes that lose a race.
const maxRetries = 8

func (c *Cell) binding(s SubjectKey, kind, id string, version int64) envelope.Binding {
	return envelope.Binding{Cell: c.id, Subject: s.Ref.String(), Kind: kind, ID: id, Version: version}
}

func recordResource(kind, id string) string { return "record/" + kind + "/" + id }

// PutRecord writes a record of a declared kind as its next version. expect
// is the version an If-Match named, or AnyVersion.
func (c *Cell) PutRecord(ctx context.Context, a domicile.Actor, s SubjectKey, kind, id string, body []byte, expect int64) (*domicile.Record, error) {
	k := c.deployment().Kind(kind)
	if k == nil {
		return nil, &domicile.Error{Code: domicile.ENotFound, Field: "kind", Message: "unknown record kind " + quote(kind)}
	}
	fields, err := k.Check(body)
	if err != nil {
		return nil, err
	}
	res := recordResource(kind, id)
	r := c.newRequest(a, s)
	if err := Authorize(a, s, domicile.ActWrite); err != nil {
		return nil, c.deny(ctx, r, domicile.ActWrite, res, err)
	}
	sub, err := c.locate(ctx, s)
	if err != nil {
		return nil, err
	}
	dk, err := c.dataKey(ctx, r, sub.KeyGen)
	if err != nil {
		return nil, c.deny(ctx, r, domicile.ActWrite, res, err)
	}
	for try := 0; ; try++ {
		var cur int64
		// After a lost race the cache may not hold the winner yet: read
		// the store.
		read := c.record
		if try > 0 {
			read = c.freshRecord
		}
		if old, err := read(ctx, s.Ref, kind, id); err == nil {
			cur = old.Version
		} else if !errors.Is(err, domicile.ErrNotFound) {
			return nil, err
		}
		if expect != domicile.AnyVersion && expect != cur {
			return nil, c.deny(ctx, r, domicile.ActWrite, res, preconditionFailed(cur))
		}
		sealed, err := envelope.SealRecord(c.cfg.Rand, dk, sub.KeyGen, c.binding(s, kind, id, cur+1), body)
		if err != nil {
			return nil, err
		}
		now := c.cfg.Now().UTC()
		rr := *r
		rr.events = append(append([]domicile.Event(nil), r.events...), c.event(r, domicile.ActWrite, res, domicile.Allowed, ""))
		stored := domicile.StoredRecord{Ref: s.Ref, Kind: kind, ID: id, Version: cur + 1, Body: sealed, Fields: fields, Updated: now}
		_, err = c.commit(ctx, &rr, &domicile.PutRecord{Record: stored, Expect: cur})
		if err == nil {
			c.records.put(&stored)
		}
		if errors.Is(err, domicile.ErrVersionMismatch) && try < maxRetries {
			continue // another write won the race; recompute
		}
		if errors.Is(err, domicile.ErrVersionMismatch) {
			return nil, domicile.Errorf(domicile.EConflict, "the record changed concurrently; retry")
		}
		if err != nil {
			return nil, logFailure(err)
		}
		return &domicile.Record{Subject: s.ID, Kind: kind, ID: id, Version: cur + 1, Updated: now}, nil
	}
}

func preconditionFailed(cur int64) error {
	if cur == 0 {
		return domicile.Errorf(domicile.EPrecondition, "If-Match does not match: the record does not exist")
	}
	return domicile.Errorf(domicile.EPrecondition, "If-Match does not match the current version %d", cur)
}

// GetRecord opens and returns a record. The read's event is durable before
// the data is returned.
func (c *Cell) GetRecord(ctx context.Context, a domicile.Actor, s SubjectKey, kind, id string) (*domicile.Record, error) {
	res := recordResource(kind, id)
	r := c.newRequest(a, s)
	if err := Authorize(a, s, domicile.ActRead); err != nil {
		return nil, c.deny(ctx, r, domicile.ActRead, res, err)
	}
	sub, err := c.locate(ctx, s)
	if err != nil {
		return nil, err
	}
	st, err := c.record(ctx, s.Ref, kind, id)
	if errors.Is(err, domicile.ErrNotFound) || (err == nil && st.Body == nil) {
		return nil, domicile.Errorf(domicile.ENotFound, "no record %s/%s", kind, id)
	}
	if err != nil {
		return nil, err
	}
	if err := c.gate(ctx, r, sub, c.Categories(kind, st.Fields)); err != nil {
		return nil, c.deny(ctx, r, domicile.ActRead, res, err)
	}
	rec, err := c.open(ctx, r, sub, st)
	if err != nil {
		return nil, c.deny(ctx, r, domicile.ActRead, res, err)
	}
	r.events = append(r.events, c.event(r, domicile.ActRead, res, domicile.Allowed, ""))
	if _, err := c.commit(ctx, r); err != nil {
		return nil, logFailure(err)
	}
	return rec, nil
}

func (c *Cell) open(ctx context.Context, r *request, sub *domicile.StoredSubject, st *domicile.StoredRecord) (*domicile.Record, error) {
	gen, err := envelope.RecordKeyGen(st.Body)
	if err != nil {
		return nil, domicile.Errorf(domicile.EInternal, "stored record %s/%s is corrupt: %v", st.Kind, st.ID, err)
	}
	dk, err := c.dataKey(ctx, r, gen)
	if err != nil {
		return nil, err
	}
	plain, err := envelope.OpenRecord(dk, c.binding(r.sub, st.Kind, st.ID, st.Version), st.Body)
	if err != nil {
		return nil, domicile.Errorf(domicile.EInternal, "stored record %s/%s does not open: %v", st.Kind, st.ID, err)
	}
	return &domicile.Record{Subject: r.sub.ID, Kind: st.Kind, ID: st.ID, Version: st.Version, Data: plain, Updated: st.Updated}, nil
}

// ListRecords returns a page of a subject's records (opened), optionally of
// one kind, after the cursor.
func (c *Cell) ListRecords(ctx context.Context, a domicile.Actor, s SubjectKey, kind, afterKind, afterID string, limit int) ([]domicile.Record, error) {
	res := "records"
	if kind != "" {
		res += "/" + kind
	}
	r := c.newRequest(a, s)
	if err := Authorize(a, s, domicile.ActList); err != nil {
		return nil, c.deny(ctx, r, domicile.ActList, res, err)
	}
	if kind != "" && c.deployment().Kind(kind) == nil {
		return nil, &domicile.Error{Code: domicile.EInvalid, Field: "kind", Message: "unknown record kind " + quote(kind)}
	}
	sub, err := c.locate(ctx, s)
	if err != nil {
		return nil, err
	}
	rows, err := c.store.Records(ctx, s.Ref, kind, afterKind, afterID, limit)
	if err != nil {
		return nil, err
	}
	var cats []domicile.Category
	for _, row := range rows {
		cats = append(cats, c.Categories(row.Kind, row.Fields)...)
	}
	if err := c.gate(ctx, r, sub, cats); err != nil {
		return nil, c.deny(ctx, r, domicile.ActList, res, err)
	}
	out := make([]domicile.Record, 0, len(rows))
	for i := range rows {
		rec, err := c.open(ctx, r, sub, &rows[i])
		if err != nil {
			return nil, c.deny(ctx, r, domicile.ActList, res, err)
		}
		out = append(out, *rec)
	}
	r.events = append(r.events, c.event(r, domicile.ActList, res, domicile.Allowed, ""))
	if _, err := c.commit(ctx, r); err != nil {
		return nil, logFailure(err)
	}
	return out, nil
}

// DeleteRecord deletes a record, leaving a tombstone so versions keep
// increasing.
func (c *Cell) DeleteRecord(ctx context.Context, a domicile.Actor, s SubjectKey, kind, id string, expect int64) error {
	res := recordResource(kind, id)
	r := c.newRequest(a, s)
	if err := Authorize(a, s, domicile.ActDelete); err != nil {
		return c.deny(ctx, r, domicile.ActDelete, res, err)
	}
	if _, err := c.locate(ctx, s); err != nil {
		return err
	}
	r.events = append(r.events, c.event(r, domicile.ActDelete, res, domicile.Allowed, ""))
	del := &domicile.DeleteRecord{Ref: s.Ref, Kind: kind, ID: id, Expect: expect, Updated: c.cfg.Now().UTC()}
	_, err := c.commit(ctx, r, del)
	if err == nil {
		c.records.put(&domicile.StoredRecord{Ref: s.Ref, Kind: kind, ID: id, Version: del.Version, Updated: del.Updated})
	}
	switch {
	case errors.Is(err, domicile.ErrNotFound):
		return domicile.Errorf(domicile.ENotFound, "no record %s/%s", kind, id)
	case errors.Is(err, domicile.ErrVersionMismatch):
		return c.deny(ctx, c.newRequest(a, s), domicile.ActDelete, res, domicile.Errorf(domicile.EPrecondition, "If-Match does not match the current version"))
	case err != nil:
		return logFailure(err)
	}
	return nil
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return "\"" + s + "\""
}
