package pebblestore

import (
	"context"
	"slices"
	"strings"

	"domicile"
	"domicile/notice"
)

// Census counts the cell's subjects, live records (their sealed bytes)
// and live objects (their sizes), scanning each table once.
func (s *Store) Census(ctx context.Context) (domicile.Census, error) {
	var c domicile.Census
	err := s.scan([]byte{tSubject}, []byte{tSubject + 1}, func(k, v []byte) (bool, error) {
		c.Subjects++
		return true, ctx.Err()
	})
	if err != nil {
		return c, err
	}
	err = s.scan([]byte{tRecord}, []byte{tRecord + 1}, func(k, v []byte) (bool, error) {
		var r domicile.StoredRecord
		if err := decRecord(&r, v); err != nil {
			return false, err
		}
		if r.Body != nil {
			c.Records++
			c.RecordBytes += int64(len(r.Body))
		}
		return true, ctx.Err()
	})
	if err != nil {
		return c, err
	}
	err = s.scan([]byte{tObject}, []byte{tObject + 1}, func(k, v []byte) (bool, error) {
		var o domicile.StoredObject
		if err := decObject(&o, v); err != nil {
			return false, err
		}
		if o.Blob != "" {
			c.Objects++
			c.ObjectBytes += o.Size
		}
		return true, ctx.Err()
	})
	return c, err
}

// PendingRequests lists the rights requests whose state is none of
// final, by deadline then id, at most limit.
func (s *Store) PendingRequests(ctx context.Context, final []string, limit int) ([]domicile.PendingRequest, error) {
	out := []domicile.PendingRequest{}
	err := s.scan([]byte{tRequest}, []byte{tRequest + 1}, func(k, v []byte) (bool, error) {
		// The key is tRequest, the subject's reference, then the id.
		if len(k) < 33 {
			return false, errMalformed
		}
		id, rest, err := cutStr(k[33:])
		if err != nil || len(rest) != 0 {
			return false, errMalformed
		}
		r := domicile.StoredRequest{ID: id}
		if err := decRequest(&r, v); err != nil {
			return false, err
		}
		if !slices.Contains(final, r.State) {
			out = append(out, domicile.PendingRequest{ID: r.ID, Kind: r.Kind, State: r.State, Received: r.Received, Deadline: r.Deadline})
		}
		return true, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b domicile.PendingRequest) int {
		if c := a.Deadline.Compare(b.Deadline); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out[:min(len(out), max(limit, 0))], nil
}

// SubjectHoldings lists the subjects whose reference sorts after after,
// with the fields of their live records per kind, at most limit.
func (s *Store) SubjectHoldings(ctx context.Context, after domicile.SubjectRef, limit int) ([]domicile.SubjectHoldings, error) {
	limit = min(max(limit, 1), domicile.MaxHoldingsPage)
	out := []domicile.SubjectHoldings{}
	lo := subjectKey(after)
	err := s.scan(lo, []byte{tSubject + 1}, func(k, v []byte) (bool, error) {
		if len(k) != 33 {
			return false, errMalformed
		}
		ref := domicile.SubjectRef(k[1:])
		if ref == after {
			return true, nil
		}
		sub, err := decSubject(ref, v)
		if err != nil {
			return false, err
		}
		out = append(out, domicile.SubjectHoldings{Ref: ref, Jurisdiction: sub.Jurisdiction, Fields: map[string][]string{}})
		return len(out) < limit, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		p := refKey(tRecord, out[i].Ref)
		err := s.scan(p, prefixEnd(p), func(k, v []byte) (bool, error) {
			kind, _, err := splitKey2(k[len(p):])
			if err != nil {
				return false, err
			}
			var r domicile.StoredRecord
			if err := decRecord(&r, v); err != nil {
				return false, err
			}
			if r.Body == nil {
				return true, nil
			}
			for _, f := range r.Fields {
				if f != "" && !slices.Contains(out[i].Fields[kind], f) {
					out[i].Fields[kind] = append(out[i].Fields[kind], f)
				}
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CellSubjects lists every subject of the cell with the fields their
// live records hold, ordered by reference: what an offline change plan
// counts (`domicile notice plan --data`, with the cell's process
// stopped: Pebble locks its directory).
func (s *Store) CellSubjects(ctx context.Context) ([]notice.SubjectInfo, error) {
	var out []notice.SubjectInfo
	var after domicile.SubjectRef
	for {
		page, err := s.SubjectHoldings(ctx, after, domicile.MaxHoldingsPage)
		if err != nil {
			return nil, err
		}
		for _, h := range page {
			out = append(out, notice.SubjectInfo{Ref: h.Ref.String(), Jurisdiction: h.Jurisdiction, Fields: h.Fields})
		}
		if len(page) < domicile.MaxHoldingsPage {
			return out, nil
		}
		after = page[len(page)-1].Ref
	}
}
