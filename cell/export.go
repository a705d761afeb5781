package cell

import (
	"context"
	"encoding/json"
	"errors"

	"domicile"
)

// Export opens the live records of subject s of the kinds in fields and
// returns them minimised: each record keeps only the fields fields names
// for its kind. It is the cell's side of an allowed transfer: the gateway
// has decided it; the cell logs one export event for the subject (with
// detail, e.g. the transfer id and mechanism), durable before any record
// reaches emit. A subject with no such record still gets its event, so
// the trail shows that the subject was part of the transfer. It returns
// the number of records emitted.
//
// Export holds one subject's records in memory at a time.
func (c *Cell) Export(ctx context.Context, a domicile.Actor, s SubjectKey, fields map[string][]string, detail string, emit func(*domicile.Record) error) (int, error) {
	for kind := range fields {
		if c.deployment().Kind(kind) == nil {
			return 0, &domicile.Error{Code: domicile.EInvalid, Field: "fields", Message: "unknown record kind " + quote(kind)}
		}
	}
	x, err := c.begin(ctx, a, s, domicile.ActExport, "export")
	if err != nil {
		return 0, err
	}
	var out []*domicile.Record
	for kind, keep := range fields {
		err := c.eachRecord(ctx, s.Ref, kind, func(st *domicile.StoredRecord) error {
			rec, err := x.open(ctx, st)
			if err != nil {
				return err
			}
			if rec.Data, err = minimise(rec.Data, keep); err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
		if err != nil {
			return 0, x.deny(ctx, err)
		}
	}
	if _, err := x.allow(ctx, detail); err != nil {
		return 0, logFailure(c, err)
	}
	for _, rec := range out {
		if err := emit(rec); err != nil {
			return 0, err
		}
	}
	return len(out), nil
}

// minimise keeps only the named fields of a JSON object.
func minimise(data []byte, keep []string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errors.New("cell: export: stored record is not a JSON object")
	}
	out := make(map[string]json.RawMessage, len(keep))
	for _, f := range keep {
		if v, ok := m[f]; ok {
			out[f] = v
		}
	}
	return json.Marshal(out)
}

// Disclose reads, for an authority's decided request, every live record of
// subject s of the given kinds (every kind when kinds is empty): each
// record is its own read, with its own event, exactly as GetRecord would
// log it, so the subject's trail lists every record disclosed. It stops
// at the first refusal. emit receives each record after its event is
// durable.
func (c *Cell) Disclose(ctx context.Context, a domicile.Actor, s SubjectKey, kinds []string, emit func(*domicile.Record) error) error {
	if a.Role != domicile.RoleAuthority {
		return domicile.Errorf(domicile.EForbidden, "a disclosure is made to an authority token")
	}
	if len(kinds) == 0 {
		kinds = []string{""}
	}
	for _, kind := range kinds {
		// The listing is itself an access (it learns which records exist).
		lx, err := c.begin(ctx, a, s, domicile.ActList, "records/"+kind)
		if err != nil {
			return err
		}
		var ids [][2]string
		if err := c.eachRecord(ctx, s.Ref, kind, func(st *domicile.StoredRecord) error {
			ids = append(ids, [2]string{st.Kind, st.ID})
			return nil
		}); err != nil {
			return err
		}
		if err := lx.allowRead(ctx); err != nil {
			return err
		}
		for _, id := range ids {
			rec, err := c.GetRecord(ctx, a, s, id[0], id[1])
			if err != nil {
				return err
			}
			if err := emit(rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// Holdings is what a subject's statement shows of its data in this cell:
// metadata only (kinds, ids, fields, versions, sizes, hashes), never a
// body or a key.
type Holdings struct {
	Subject domicile.StoredSubject
	Records []domicile.StoredRecord
	Objects []domicile.StoredObject
	// Events are the subject's events, oldest first, at most MaxEvents.
	Events []domicile.StoredEvent
}

// MaxEvents bounds the events Holdings returns.
const MaxEvents = 20000

// Holdings returns what subject s holds in this cell, for its statement:
// to the subject's own token, or to the app (whose purpose must read
// everything, since a statement names every record). It is one logged
// list access, gated like a read when the actor acts from abroad.
func (c *Cell) Holdings(ctx context.Context, a domicile.Actor, s SubjectKey) (*Holdings, error) {
	x := &Access{c: c, actor: a, sub: s, act: domicile.ActList, res: "statement"}
	switch {
	case a.Role == domicile.RoleApp:
	case a.Role == domicile.RoleSubject && a.Subject == s.Ref.String():
	default:
		return nil, x.deny(ctx, domicile.Errorf(domicile.EForbidden, "a statement is for the subject's own token or the app"))
	}
	x, err := c.begin(ctx, a, s, domicile.ActList, "statement")
	if err != nil {
		return nil, err
	}
	p, err := x.purpose(ctx)
	if err == nil && p != nil {
		err = domicile.Errorf(domicile.EForbidden, "purpose %q does not read every kind of record, and a statement names them all (deployment rule purposes.%s)", p.Name, p.Name)
	}
	if err != nil {
		return nil, x.deny(ctx, err)
	}
	h := &Holdings{Subject: *x.stored}
	fields := map[string][]string{"statement": {"records", "objects", "trail"}}
	if _, err := x.gate(ctx, fields); err != nil {
		return nil, x.deny(ctx, err)
	}
	if err := c.eachRecord(ctx, s.Ref, "", func(st *domicile.StoredRecord) error {
		r := *st
		r.Body = nil
		h.Records = append(h.Records, r)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := c.eachObject(ctx, s.Ref, func(o *domicile.StoredObject) error {
		if o.Blob == "" {
			return nil
		}
		r := *o
		r.Blob = ""
		h.Objects = append(h.Objects, r)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := x.allowRead(ctx); err != nil {
		return nil, err
	}
	// The trail is read after the statement's own event is durable, so it
	// includes it.
	for after := int64(-1); len(h.Events) < MaxEvents; {
		evs, err := c.store.SubjectEvents(ctx, s.Ref, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			after = e.Index
			h.Events = append(h.Events, e)
		}
		if len(evs) < 1000 {
			break
		}
	}
	return h, nil
}
