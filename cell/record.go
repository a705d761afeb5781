package cell

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

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
// is the version an If-Match named, or AnyVersion, NoVersion (it does not
// exist now) or ExistingVersion (it does).
func (c *Cell) PutRecord(ctx context.Context, a domicile.Actor, s SubjectKey, kind, id string, body []byte, expect int64) (*domicile.Record, error) {
	release, err := c.enterWrite(ctx, s.Ref)
	if err != nil {
		return nil, err
	}
	defer release()
	k := c.deployment().Kind(kind)
	if k == nil {
		return nil, &domicile.Error{Code: domicile.ENotFound, Field: "kind", Message: "unknown record kind " + quote(kind)}
	}
	fields, err := k.Check(body)
	if err != nil {
		return nil, err
	}
	x, err := c.begin(ctx, a, s, domicile.ActWrite, recordResource(kind, id))
	if err != nil {
		return nil, err
	}
	dk, err := x.dataKey(ctx, x.stored.KeyGen)
	if err != nil {
		return nil, x.deny(ctx, err)
	}
	for try := 0; ; try++ {
		var cur int64
		live := false
		// After a lost race the cache may not hold the winner yet: read
		// the store.
		if try == 0 {
			cur, live, err = c.recordVersion(ctx, s.Ref, kind, id)
			if err != nil {
				return nil, err
			}
		} else if old, err := c.freshRecord(ctx, s.Ref, kind, id); err == nil {
			cur, live = old.Version, old.Body != nil
		} else if !isNotFound(err) {
			return nil, err
		}
		if !expectationHolds(expect, cur, live) {
			return nil, x.deny(ctx, preconditionFailed(cur, live))
		}
		sealed, err := envelope.SealRecord(c.cfg.Rand, dk, x.stored.KeyGen, c.binding(s, kind, id, cur+1), body)
		if err != nil {
			return nil, err
		}
		now := c.cfg.Now().UTC()
		stored := domicile.StoredRecord{Ref: s.Ref, Kind: kind, ID: id, Version: cur + 1, Body: sealed, Fields: fields, Updated: now}
		pending := x.pending
		_, err = x.allow(ctx, "", &domicile.PutRecord{Record: stored, Expect: cur})
		if err == nil {
			c.records.put(&stored)
			return &domicile.Record{Subject: s.ID, Kind: kind, ID: id, Version: cur + 1, Updated: now}, nil
		}
		x.pending, x.done = pending, false // nothing was committed
		if errors.Is(err, domicile.ErrVersionMismatch) && try < maxRetries {
			continue // another write won the race; recompute
		}
		if errors.Is(err, domicile.ErrVersionMismatch) {
			return nil, x.deny(ctx, domicile.Errorf(domicile.EConflict, "the record changed concurrently; retry"))
		}
		return nil, logFailure(c, err)
	}
}

// expectationHolds reports whether a write's expectation (the version an
// If-Match names, or AnyVersion, NoVersion, ExistingVersion) holds for a
// resource at version cur (0 if never written), live if it exists now
// (not deleted). The store is then given cur itself, so that the write
// commits only if nothing changed in between.
func expectationHolds(expect, cur int64, live bool) bool {
	switch expect {
	case domicile.AnyVersion:
		return true
	case domicile.NoVersion:
		return !live
	case domicile.ExistingVersion:
		return live
	}
	return live && expect == cur
}

func preconditionFailed(cur int64, live bool) error {
	if !live {
		return domicile.Errorf(domicile.EPrecondition, "If-Match does not match: there is no current version")
	}
	return domicile.Errorf(domicile.EPrecondition, "precondition does not hold for the current version %d", cur)
}

// GetRecord opens and returns a record, with only the fields the app's
// purpose and, from abroad, the covering mechanism allow (the others are
// named in Withheld). The read's event is durable before the data is
// returned.
func (c *Cell) GetRecord(ctx context.Context, a domicile.Actor, s SubjectKey, kind, id string) (*domicile.Record, error) {
	x, err := c.begin(ctx, a, s, domicile.ActRead, recordResource(kind, id))
	if err != nil {
		return nil, err
	}
	return x.readRecord(ctx, kind, id)
}

// readRecord is the read of one record by access x.
func (x *Access) readRecord(ctx context.Context, kind, id string) (*domicile.Record, error) {
	c := x.c
	st, err := c.record(ctx, x.sub.Ref, kind, id)
	if isNotFound(err) || (err == nil && st.Body == nil) {
		return nil, x.missing(ctx, domicile.Errorf(domicile.ENotFound, "no record %s/%s", kind, id))
	}
	if err != nil {
		return nil, err
	}
	p, err := x.purpose(ctx, kind)
	if err != nil {
		return nil, x.deny(ctx, err)
	}
	fields := map[string][]string{kind: readable(p, c.deployment().Kind(kind), kind, st.Fields)}
	g, err := x.gate(ctx, fields)
	if err != nil {
		return nil, x.deny(ctx, err)
	}
	rec, err := x.open(ctx, st)
	if err != nil {
		return nil, x.deny(ctx, err)
	}
	if err := x.narrow(p, g, rec); err != nil {
		return nil, err
	}
	if len(rec.Withheld) > 0 {
		x.notes = append(x.notes, "withheld "+strings.Join(rec.Withheld, ","))
	}
	if err := x.allowRead(ctx); err != nil {
		return nil, err
	}
	return rec, nil
}

// readable returns the fields of a record of kind that purpose p reads.
func readable(p *domicile.Purpose, k *domicile.Kind, kind string, fields []string) []string {
	if p == nil {
		return fields
	}
	var out []string
	for _, f := range fields {
		cat := domicile.Personal
		if k != nil {
			if c, ok := k.Fields[f]; ok {
				cat = c
			}
		}
		if p.ReadsField(kind, f, cat) {
			out = append(out, f)
		}
	}
	return out
}

// open decrypts a stored record for access x.
func (x *Access) open(ctx context.Context, st *domicile.StoredRecord) (*domicile.Record, error) {
	gen, err := envelope.RecordKeyGen(st.Body)
	if err != nil {
		return nil, domicile.Errorf(domicile.EInternal, "stored record %s/%s is corrupt: %v", st.Kind, st.ID, err)
	}
	dk, err := x.dataKey(ctx, gen)
	if err != nil {
		return nil, err
	}
	plain, err := envelope.OpenRecord(dk, x.c.binding(x.sub, st.Kind, st.ID, st.Version), st.Body)
	if err != nil {
		return nil, domicile.Errorf(domicile.EInternal, "stored record %s/%s does not open: %v", st.Kind, st.ID, err)
	}
	return &domicile.Record{Subject: x.sub.ID, Kind: st.Kind, ID: st.ID, Version: st.Version, Data: plain, Updated: st.Updated}, nil
}

// ListRecords returns a page of a subject's records (opened), optionally of
// one kind, after the cursor. For the app, records of kinds its purpose
// does not read are left out of the page and fields it does not read are
// withheld. The cursor to continue from is the last stored record the
// page looked at: next is empty at the end.
func (c *Cell) ListRecords(ctx context.Context, a domicile.Actor, s SubjectKey, kind, afterKind, afterID string, limit int) (recs []domicile.Record, next [2]string, err error) {
	res := "records"
	if kind != "" {
		res += "/" + kind
	}
	if kind != "" && c.deployment().Kind(kind) == nil {
		return nil, next, &domicile.Error{Code: domicile.EInvalid, Field: "kind", Message: "unknown record kind " + quote(kind)}
	}
	x, err := c.begin(ctx, a, s, domicile.ActList, res)
	if err != nil {
		return nil, next, err
	}
	var kinds []string
	if kind != "" {
		kinds = []string{kind}
	} else {
		for _, k := range c.deployment().Kinds {
			kinds = append(kinds, k.Name)
		}
	}
	p, err := x.purpose(ctx, kinds...)
	if err != nil {
		return nil, next, x.deny(ctx, err)
	}
	rows, err := c.store.Records(ctx, s.Ref, kind, afterKind, afterID, limit)
	if err != nil {
		return nil, next, err
	}
	if len(rows) == limit && limit > 0 {
		next = [2]string{rows[len(rows)-1].Kind, rows[len(rows)-1].ID}
	}
	fields := map[string][]string{}
	var keep []domicile.StoredRecord
	for _, row := range rows {
		if p != nil && !p.ReadsKind(row.Kind) {
			continue
		}
		keep = append(keep, row)
		for _, f := range readable(p, c.deployment().Kind(row.Kind), row.Kind, row.Fields) {
			if !slices.Contains(fields[row.Kind], f) {
				fields[row.Kind] = append(fields[row.Kind], f)
			}
		}
	}
	g, err := x.gate(ctx, fields)
	if err != nil {
		return nil, next, x.deny(ctx, err)
	}
	out := make([]domicile.Record, 0, len(keep))
	withheld := 0
	for i := range keep {
		rec, err := x.open(ctx, &keep[i])
		if err != nil {
			return nil, next, x.deny(ctx, err)
		}
		if err := x.narrow(p, g, rec); err != nil {
			return nil, next, err
		}
		if len(rec.Withheld) > 0 {
			withheld++
		}
		out = append(out, *rec)
	}
	if skipped := len(rows) - len(keep); skipped > 0 {
		x.notes = append(x.notes, "left out "+strconv.Itoa(skipped)+" records outside the purpose")
	}
	if withheld > 0 {
		x.notes = append(x.notes, "withheld fields of "+strconv.Itoa(withheld)+" records")
	}
	if err := x.allowRead(ctx); err != nil {
		return nil, next, err
	}
	return out, next, nil
}

// DeleteRecord deletes a record, leaving a tombstone so versions keep
// increasing.
func (c *Cell) DeleteRecord(ctx context.Context, a domicile.Actor, s SubjectKey, kind, id string, expect int64) error {
	release, err := c.enterWrite(ctx, s.Ref)
	if err != nil {
		return err
	}
	defer release()
	x, err := c.begin(ctx, a, s, domicile.ActDelete, recordResource(kind, id))
	if err != nil {
		return err
	}
	st, err := c.record(ctx, s.Ref, kind, id)
	if isNotFound(err) || (err == nil && st.Body == nil) {
		return x.missing(ctx, domicile.Errorf(domicile.ENotFound, "no record %s/%s", kind, id))
	}
	if err != nil {
		return err
	}
	del := &domicile.DeleteRecord{Ref: s.Ref, Kind: kind, ID: id, Expect: expect, Updated: c.cfg.Now().UTC()}
	_, err = x.allow(ctx, "", del)
	switch {
	case err == nil:
		c.records.put(&domicile.StoredRecord{Ref: s.Ref, Kind: kind, ID: id, Version: del.Version, Updated: del.Updated})
		return nil
	case errors.Is(err, domicile.ErrNotFound):
		x.done = false
		return x.missing(ctx, domicile.Errorf(domicile.ENotFound, "no record %s/%s", kind, id))
	case errors.Is(err, domicile.ErrVersionMismatch):
		x.done = false
		return x.deny(ctx, domicile.Errorf(domicile.EPrecondition, "If-Match does not match the current version"))
	}
	return logFailure(c, err)
}

// eachRecord calls fn for every live record of subject ref of kind (every
// kind when kind is empty), in (kind, id) order, a page at a time. It is
// the one place that pages through a subject's records; it reads sealed
// rows only, for operations that are already an Access.
func (c *Cell) eachRecord(ctx context.Context, ref domicile.SubjectRef, kind string, fn func(*domicile.StoredRecord) error) error {
	afterKind, afterID := "", ""
	for {
		rows, err := c.store.Records(ctx, ref, kind, afterKind, afterID, domicile.MaxListLimit)
		if err != nil {
			return err
		}
		for i := range rows {
			if rows[i].Body == nil {
				continue
			}
			if err := fn(&rows[i]); err != nil {
				return err
			}
		}
		if len(rows) < domicile.MaxListLimit {
			return nil
		}
		afterKind, afterID = rows[len(rows)-1].Kind, rows[len(rows)-1].ID
	}
}

// eachObject is eachRecord for objects.
func (c *Cell) eachObject(ctx context.Context, ref domicile.SubjectRef, fn func(*domicile.StoredObject) error) error {
	after := ""
	for {
		rows, err := c.store.Objects(ctx, ref, after, domicile.MaxListLimit)
		if err != nil {
			return err
		}
		for i := range rows {
			if err := fn(&rows[i]); err != nil {
				return err
			}
		}
		if len(rows) < domicile.MaxListLimit {
			return nil
		}
		after = rows[len(rows)-1].Name
	}
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return "\"" + s + "\""
}
