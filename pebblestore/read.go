package pebblestore

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"domicile"
)

// Subject returns a subject's row.
func (s *Store) Subject(ctx context.Context, ref domicile.SubjectRef) (*domicile.StoredSubject, error) {
	sl, ok, err := s.slotOf(ref)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, domicile.ErrNotFound
	}
	v, err := s.get(subjectKey(sl))
	if err != nil {
		return nil, err
	}
	sub, err := decSubject(v)
	if err != nil {
		return nil, err
	}
	if sub.Ref != ref {
		return nil, fmt.Errorf("pebblestore: subject row under another subject's slot: %w", errMalformed)
	}
	return sub, nil
}

// Record returns a record's row, or ErrNotFound. A deleted record is
// returned with a nil Body so that callers can continue its versions.
func (s *Store) Record(ctx context.Context, ref domicile.SubjectRef, kind, id string) (*domicile.StoredRecord, error) {
	sl, ok, err := s.slotOf(ref)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, domicile.ErrNotFound
	}
	v, c, err := s.db.Get(recordKey(sl, kind, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("pebblestore: record: %w", err)
	}
	defer c.Close()
	r := &domicile.StoredRecord{Ref: ref, Kind: kind, ID: id}
	if err := decRecord(r, v); err != nil {
		return nil, err
	}
	return r, nil
}

// scan calls fn for each key and value in [lo, hi) until fn returns false.
// Key and value are valid only during the call.
func (s *Store) scan(lo, hi []byte, fn func(k, v []byte) (bool, error)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("pebblestore: scan: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("pebblestore: scan: %w", err)
		}
		more, err := fn(it.Key(), v)
		if err != nil {
			it.Close()
			return err
		}
		if !more {
			break
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// after returns the smallest key greater than k: where a listing resumes
// after the row k names (no key is a proper prefix of another row's key,
// as the strings in keys are terminated).
func after(k []byte) []byte { return append(k, 0) }

// Records lists live records of a subject, optionally of one kind, after
// the cursor (afterKind, afterID).
func (s *Store) Records(ctx context.Context, ref domicile.SubjectRef, kind, afterKind, afterID string, limit int) ([]domicile.StoredRecord, error) {
	sl, ok, err := s.slotOf(ref)
	if err != nil || !ok {
		return nil, err
	}
	p := slotKey(tRecord, sl)
	lo, hi := p, prefixEnd(p)
	if afterKind != "" || afterID != "" {
		lo = after(recordKey(sl, afterKind, afterID))
	}
	if kind != "" {
		kp := appendStr(slotKey(tRecord, sl), kind)
		if string(kp) > string(lo) {
			lo = kp
		}
		hi = prefixEnd(kp)
	}
	if string(lo) >= string(hi) {
		return nil, nil
	}
	var out []domicile.StoredRecord
	err = s.scan(lo, hi, func(k, v []byte) (bool, error) {
		r := domicile.StoredRecord{Ref: ref}
		kd, id, err := splitKey2(k[len(p):])
		if err != nil {
			return false, err
		}
		r.Kind, r.ID = kd, id
		if err := decRecord(&r, v); err != nil {
			return false, err
		}
		if r.Body != nil {
			out = append(out, r)
		}
		return len(out) < limit, nil
	})
	return out, err
}

// splitKey2 decodes the two order-preserving strings that end a key.
func splitKey2(b []byte) (string, string, error) {
	a, rest, err := cutStr(b)
	if err != nil {
		return "", "", err
	}
	c, rest, err := cutStr(rest)
	if err != nil || len(rest) != 0 {
		return "", "", errMalformed
	}
	return a, c, nil
}

// cutStr decodes one order-preserving string from the start of b.
func cutStr(b []byte) (string, []byte, error) {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			out = append(out, b[i])
			continue
		}
		if i+1 >= len(b) {
			return "", nil, errMalformed
		}
		switch b[i+1] {
		case 0xff:
			out = append(out, 0)
			i++
		case 1:
			return string(out), b[i+2:], nil
		default:
			return "", nil, errMalformed
		}
	}
	return "", nil, errMalformed
}

// Object returns an object's row, or ErrNotFound. A deleted object is
// returned with an empty Blob so callers can continue its versions.
func (s *Store) Object(ctx context.Context, ref domicile.SubjectRef, name string) (*domicile.StoredObject, error) {
	sl, ok, err := s.slotOf(ref)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, domicile.ErrNotFound
	}
	v, err := s.get(objectKey(sl, name))
	if err != nil {
		return nil, err
	}
	o := &domicile.StoredObject{Ref: ref, Name: name}
	if err := decObject(o, v); err != nil {
		return nil, err
	}
	return o, nil
}

// Objects lists live objects of a subject after name.
func (s *Store) Objects(ctx context.Context, ref domicile.SubjectRef, afterName string, limit int) ([]domicile.StoredObject, error) {
	sl, ok, err := s.slotOf(ref)
	if err != nil || !ok {
		return nil, err
	}
	p := slotKey(tObject, sl)
	lo := p
	if afterName != "" {
		lo = after(objectKey(sl, afterName))
	}
	var out []domicile.StoredObject
	err = s.scan(lo, prefixEnd(p), func(k, v []byte) (bool, error) {
		name, rest, err := cutStr(k[len(p):])
		if err != nil || len(rest) != 0 {
			return false, errMalformed
		}
		o := domicile.StoredObject{Ref: ref, Name: name}
		if err := decObject(&o, v); err != nil {
			return false, err
		}
		if o.Blob != "" {
			out = append(out, o)
		}
		return len(out) < limit, nil
	})
	return out, err
}

// LogSize returns the number of durable log entries.
func (s *Store) LogSize(ctx context.Context) (int64, error) {
	return s.committed.Load(), nil
}

// Leaves returns leaves [start, end), which must be within the durable log.
func (s *Store) Leaves(ctx context.Context, start, end int64) ([][]byte, error) {
	if start < 0 || end < start || end > s.committed.Load() {
		return nil, fmt.Errorf("pebblestore: leaves [%d,%d) of a log of %d", start, end, s.committed.Load())
	}
	evs, err := s.events(start, end, 0)
	if err != nil {
		return nil, err
	}
	if int64(len(evs)) != end-start {
		return nil, fmt.Errorf("pebblestore: leaves [%d,%d): have %d", start, end, len(evs))
	}
	out := make([][]byte, len(evs))
	for i := range evs {
		out[i] = evs[i].Leaf
	}
	return out, nil
}

// events returns the durable events with index in [start, end), at most
// limit (0: no limit).
func (s *Store) events(start, end int64, limit int) ([]domicile.StoredEvent, error) {
	end = min(end, s.committed.Load())
	if start >= end {
		return nil, nil
	}
	var out []domicile.StoredEvent
	err := s.scan(eventKey(start), eventKey(end), func(k, v []byte) (bool, error) {
		ev, err := decEvent(int64(beUint64(k[1:])), v)
		if err != nil {
			return false, fmt.Errorf("pebblestore: event %d: %w", beUint64(k[1:]), err)
		}
		out = append(out, ev)
		return limit == 0 || len(out) < limit, nil
	})
	return out, err
}

// Events lists durable events with index in [start, end).
func (s *Store) Events(ctx context.Context, start, end int64) ([]domicile.StoredEvent, error) {
	return s.events(max(start, 0), end, 0)
}

// SubjectEvents lists a subject's durable events after index after.
func (s *Store) SubjectEvents(ctx context.Context, ref domicile.SubjectRef, afterIdx int64, limit int) ([]domicile.StoredEvent, error) {
	sl, ok, err := s.slotOf(ref)
	if err != nil || !ok {
		return nil, err
	}
	p := slotKey(tSubjEvent, sl)
	committed := s.committed.Load()
	var idxs []int64
	err = s.scan(subjEventKey(sl, max(afterIdx+1, 0)), prefixEnd(p), func(k, v []byte) (bool, error) {
		idx := int64(beUint64(k[len(p):]))
		if idx >= committed {
			return false, nil
		}
		idxs = append(idxs, idx)
		return len(idxs) < limit, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]domicile.StoredEvent, 0, len(idxs))
	for _, idx := range idxs {
		v, err := s.get(eventKey(idx))
		if err != nil {
			return nil, fmt.Errorf("pebblestore: event %d: %w", idx, err)
		}
		ev, err := decEvent(idx, v)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

// PutCheckpoint stores a signed checkpoint durably; a checkpoint of a
// size already stored is kept, not replaced.
func (s *Store) PutCheckpoint(ctx context.Context, size int64, note []byte) error {
	if _, err := s.get(checkpointKey(size)); err == nil {
		return nil
	}
	if err := s.db.Set(checkpointKey(size), note, pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: put checkpoint: %w", err)
	}
	return nil
}

// LatestCheckpoint returns the largest stored checkpoint, or size -1.
func (s *Store) LatestCheckpoint(ctx context.Context) (int64, []byte, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tCheckpoint}, UpperBound: []byte{tCheckpoint + 1}})
	if err != nil {
		return 0, nil, fmt.Errorf("pebblestore: checkpoint: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		if err := it.Error(); err != nil {
			return 0, nil, fmt.Errorf("pebblestore: checkpoint: %w", err)
		}
		return -1, nil, nil
	}
	v, err := it.ValueAndErr()
	if err != nil {
		return 0, nil, fmt.Errorf("pebblestore: checkpoint: %w", err)
	}
	return int64(beUint64(it.Key()[1:])), append([]byte(nil), v...), nil
}

// Meta returns a named value, or ErrNotFound.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	return s.get(metaKey(key))
}

// PutMeta stores a named value durably.
func (s *Store) PutMeta(ctx context.Context, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	if err := s.db.Set(metaKey(key), value, pebble.Sync); err != nil {
		return fmt.Errorf("pebblestore: put meta: %w", err)
	}
	return nil
}

// Request returns a subject's rights request, or ErrNotFound.
func (s *Store) Request(ctx context.Context, ref domicile.SubjectRef, id string) (*domicile.StoredRequest, error) {
	sl, ok, err := s.slotOf(ref)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, domicile.ErrNotFound
	}
	v, err := s.get(requestKey(sl, id))
	if err != nil {
		return nil, err
	}
	r := &domicile.StoredRequest{Ref: ref, ID: id}
	if err := decRequest(r, v); err != nil {
		return nil, err
	}
	return r, nil
}

// Requests lists a subject's rights requests by id, after the id after.
func (s *Store) Requests(ctx context.Context, ref domicile.SubjectRef, afterID string, limit int) ([]domicile.StoredRequest, error) {
	sl, ok, err := s.slotOf(ref)
	if err != nil || !ok {
		return nil, err
	}
	p := slotKey(tRequest, sl)
	lo := p
	if afterID != "" {
		lo = after(requestKey(sl, afterID))
	}
	var out []domicile.StoredRequest
	err = s.scan(lo, prefixEnd(p), func(k, v []byte) (bool, error) {
		id, rest, err := cutStr(k[len(p):])
		if err != nil || len(rest) != 0 {
			return false, errMalformed
		}
		r := domicile.StoredRequest{Ref: ref, ID: id}
		if err := decRequest(&r, v); err != nil {
			return false, err
		}
		out = append(out, r)
		return len(out) < limit, nil
	})
	return out, err
}

// Receipt returns a stored erasure receipt, or ErrNotFound.
func (s *Store) Receipt(ctx context.Context, id string) (*domicile.StoredReceipt, error) {
	v, err := s.get(receiptKey(id))
	if err != nil {
		return nil, err
	}
	r := &domicile.StoredReceipt{ID: id}
	if err := decReceipt(r, v); err != nil {
		return nil, err
	}
	return r, nil
}
