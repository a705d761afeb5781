package pebblestore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

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
		// The key is tRequest, the subject's slot, then the id.
		if len(k) < 1+slotLen {
			return false, errMalformed
		}
		id, rest, err := cutStr(k[1+slotLen:])
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
//
// Subjects are stored by slot, in no order of their references. A
// listing pages through a snapshot of (reference, slot) pairs sorted by
// reference, taken by one scan of the subject table when a listing starts
// (after is the zero reference) or when the snapshot is older than
// holdingsSnapshotTTL, and kept for the pages that follow: a listing of n
// subjects reads the subject table about once, not once per page. A
// subject erased since the snapshot is skipped; one registered since is
// in the next listing (as with any paging by key, a listing does not see
// subjects added below its cursor). A page of one whose subject is the
// successor of after (how a migration asks for one subject's fields) is
// read directly.
func (s *Store) SubjectHoldings(ctx context.Context, after domicile.SubjectRef, limit int) ([]domicile.SubjectHoldings, error) {
	limit = min(max(limit, 1), domicile.MaxHoldingsPage)
	if next, ok := successor(after); ok && limit == 1 {
		sl, found, err := s.slotOf(next)
		if err != nil {
			return nil, err
		}
		if found {
			v, err := s.get(subjectKey(sl))
			if err == nil {
				sub, err := decSubject(v)
				if err != nil {
					return nil, err
				}
				return s.holdings(ctx, []slotSubject{{sl: sl, sub: sub}})
			} else if !errors.Is(err, domicile.ErrNotFound) {
				return nil, err
			}
		}
	}
	snap, err := s.subjectSnapshot(ctx, after.IsZero())
	if err != nil {
		return nil, err
	}
	i, _ := slices.BinarySearchFunc(snap, after, func(e refSlot, ref domicile.SubjectRef) int {
		return bytes.Compare(e.ref[:], ref[:])
	})
	if i < len(snap) && snap[i].ref == after {
		i++
	}
	var page []slotSubject
	for ; i < len(snap) && len(page) < limit; i++ {
		v, err := s.get(subjectKey(snap[i].sl))
		if errors.Is(err, domicile.ErrNotFound) {
			continue // erased since the snapshot
		}
		if err != nil {
			return nil, err
		}
		sub, err := decSubject(v)
		if err != nil {
			return nil, err
		}
		page = append(page, slotSubject{sl: snap[i].sl, sub: sub})
	}
	return s.holdings(ctx, page)
}

// holdingsSnapshotTTL is how long a listing's sorted snapshot of the
// subjects serves the pages after its first.
const holdingsSnapshotTTL = 5 * time.Minute

// refSlot is one subject of a listing's snapshot.
type refSlot struct {
	ref domicile.SubjectRef
	sl  slot
}

// subjectSnapshot returns the subjects' references and slots sorted by
// reference: the one kept if it is younger than holdingsSnapshotTTL and
// fresh is false, else a new one from a scan of the subject table.
func (s *Store) subjectSnapshot(ctx context.Context, fresh bool) ([]refSlot, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	if !fresh && s.snap != nil && time.Since(s.snapAt) < holdingsSnapshotTTL {
		return s.snap, nil
	}
	var snap []refSlot
	err := s.eachSubject(ctx, func(sl slot, sub *domicile.StoredSubject) error {
		snap = append(snap, refSlot{ref: sub.Ref, sl: sl})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(snap, func(a, b refSlot) int { return bytes.Compare(a.ref[:], b.ref[:]) })
	s.snap, s.snapAt = snap, time.Now()
	return snap, nil
}

// slotSubject is a subject's row with its slot.
type slotSubject struct {
	sl  slot
	sub *domicile.StoredSubject
}

// eachSubject calls fn for each subject of the store, in the order of
// their slots.
func (s *Store) eachSubject(ctx context.Context, fn func(slot, *domicile.StoredSubject) error) error {
	return s.scan([]byte{tSubject}, []byte{tSubject + 1}, func(k, v []byte) (bool, error) {
		if len(k) != 1+slotLen {
			return false, errMalformed
		}
		sub, err := decSubject(v)
		if err != nil {
			return false, err
		}
		if err := fn(slot(k[1:]), sub); err != nil {
			return false, err
		}
		return true, ctx.Err()
	})
}

// holdings returns the holdings of subs, in their order: the fields of
// each one's live records per kind.
func (s *Store) holdings(ctx context.Context, subs []slotSubject) ([]domicile.SubjectHoldings, error) {
	out := make([]domicile.SubjectHoldings, 0, len(subs))
	for _, ss := range subs {
		h := domicile.SubjectHoldings{Ref: ss.sub.Ref, Jurisdiction: ss.sub.Jurisdiction, Fields: map[string][]string{}}
		p := slotKey(tRecord, ss.sl)
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
				if f != "" && !slices.Contains(h.Fields[kind], f) {
					h.Fields[kind] = append(h.Fields[kind], f)
				}
			}
			return true, nil
		})
		if err != nil {
			return nil, err
		}
		out = append(out, h)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// successor returns the reference just after ref bytewise, and false when
// ref is the last one.
func successor(ref domicile.SubjectRef) (domicile.SubjectRef, bool) {
	for i := len(ref) - 1; i >= 0; i-- {
		if ref[i] < 0xff {
			ref[i]++
			return ref, true
		}
		ref[i] = 0
	}
	return ref, false
}

// CellSubjects lists every subject of the cell with the fields their
// live records hold, ordered by reference: what an offline change plan
// counts (`domicile notice plan --data`, with the cell's process
// stopped: Pebble locks its directory).
func (s *Store) CellSubjects(ctx context.Context) ([]notice.SubjectInfo, error) {
	var subs []slotSubject
	err := s.eachSubject(ctx, func(sl slot, sub *domicile.StoredSubject) error {
		subs = append(subs, slotSubject{sl: sl, sub: sub})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(subs, func(a, b slotSubject) int { return bytes.Compare(a.sub.Ref[:], b.sub.Ref[:]) })
	hs, err := s.holdings(ctx, subs)
	if err != nil {
		return nil, err
	}
	var out []notice.SubjectInfo
	for _, h := range hs {
		out = append(out, notice.SubjectInfo{Ref: h.Ref.String(), Jurisdiction: h.Jurisdiction, Fields: h.Fields})
	}
	return out, nil
}
