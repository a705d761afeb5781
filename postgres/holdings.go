package postgres

import (
	"context"
	"fmt"
	"slices"

	"domicile"
)

// SubjectHoldings lists the subjects after after, with the fields of
// their live records, in one statement.
func (s *Store) SubjectHoldings(ctx context.Context, after domicile.SubjectRef, limit int) ([]domicile.SubjectHoldings, error) {
	limit = min(max(limit, 1), domicile.MaxHoldingsPage)
	rows, err := s.pool.Query(ctx, `SELECT s.ref, s.jurisdiction, COALESCE(r.kind, ''::BYTEA), COALESCE(r.fields, '{}'::TEXT[])
		FROM (SELECT ref, jurisdiction FROM subjects WHERE ref > $1 ORDER BY ref LIMIT $2) s
		LEFT JOIN records r ON r.ref = s.ref AND r.body IS NOT NULL ORDER BY s.ref, r.kind, r.id`, after[:], limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: subject holdings: %w", err)
	}
	defer rows.Close()
	out := []domicile.SubjectHoldings{}
	for rows.Next() {
		var ref, kind []byte
		var j string
		var fields []string
		if err := rows.Scan(&ref, &j, &kind, &fields); err != nil {
			return nil, fmt.Errorf("postgres: subject holdings: %w", err)
		}
		var r domicile.SubjectRef
		copy(r[:], ref)
		if len(out) == 0 || out[len(out)-1].Ref != r {
			out = append(out, domicile.SubjectHoldings{Ref: r, Jurisdiction: domicile.Jurisdiction(j), Fields: map[string][]string{}})
		}
		if len(kind) == 0 {
			continue
		}
		cur := &out[len(out)-1]
		for _, f := range fields {
			if f != "" && !slices.Contains(cur.Fields[string(kind)], f) {
				cur.Fields[string(kind)] = append(cur.Fields[string(kind)], f)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: subject holdings: %w", err)
	}
	return out, nil
}
