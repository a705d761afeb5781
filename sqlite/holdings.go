package sqlite

import (
	"context"
	"fmt"
	"slices"

	"domicile"
)

// SubjectHoldings lists the subjects after after, with the fields of
// their live records, in one read transaction.
func (s *Store) SubjectHoldings(ctx context.Context, after domicile.SubjectRef, limit int) ([]domicile.SubjectHoldings, error) {
	limit = min(max(limit, 1), domicile.MaxHoldingsPage)
	rows, err := s.rdb.QueryContext(ctx, `SELECT s.ref, s.jurisdiction, COALESCE(r.kind, ''), COALESCE(r.fields, '')
		FROM (SELECT ref, jurisdiction FROM subjects WHERE ref > ? ORDER BY ref LIMIT ?) s
		LEFT JOIN records r ON r.ref = s.ref AND r.body IS NOT NULL ORDER BY s.ref, r.kind, r.id`, after[:], limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: subject holdings: %w", err)
	}
	defer rows.Close()
	out := []domicile.SubjectHoldings{}
	for rows.Next() {
		var ref []byte
		var j, kind, fields string
		if err := rows.Scan(&ref, &j, &kind, &fields); err != nil {
			return nil, fmt.Errorf("sqlite: subject holdings: %w", err)
		}
		out = addHolding(out, ref, j, kind, splitFields(fields))
	}
	return out, rows.Err()
}

// addHolding adds one row (a subject and one of its records, or none)
// to the subjects listed so far, which are in reference order.
func addHolding(out []domicile.SubjectHoldings, ref []byte, j, kind string, fields []string) []domicile.SubjectHoldings {
	var r domicile.SubjectRef
	copy(r[:], ref)
	if len(out) == 0 || out[len(out)-1].Ref != r {
		out = append(out, domicile.SubjectHoldings{Ref: r, Jurisdiction: domicile.Jurisdiction(j), Fields: map[string][]string{}})
	}
	if kind == "" {
		return out
	}
	cur := &out[len(out)-1]
	for _, f := range fields {
		if f != "" && !slices.Contains(cur.Fields[kind], f) {
			cur.Fields[kind] = append(cur.Fields[kind], f)
		}
	}
	return out
}
