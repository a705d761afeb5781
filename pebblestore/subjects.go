package pebblestore

import (
	"context"
	"slices"

	"domicile"
	"domicile/notice"
)

// CellSubjects lists the cell's subjects with the fields their live
// records hold, per kind, ordered by reference: what a change plan
// counts (the SQLite store's equivalent is commstore.CellSubjects). It
// reads the open store, as a cell's process holds its Pebble database
// open.
func (s *Store) CellSubjects(ctx context.Context) ([]notice.SubjectInfo, error) {
	var out []notice.SubjectInfo
	err := s.scan([]byte{tSubject}, []byte{tSubject + 1}, func(k, v []byte) (bool, error) {
		if len(k) != 33 {
			return false, errMalformed
		}
		ref := domicile.SubjectRef(k[1:])
		sub, err := decSubject(ref, v)
		if err != nil {
			return false, err
		}
		out = append(out, notice.SubjectInfo{Ref: ref.String(), Jurisdiction: sub.Jurisdiction, Fields: map[string][]string{}})
		return true, ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		ref, _ := domicile.ParseSubjectRef(out[i].Ref)
		p := refKey(tRecord, ref)
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
