package postgres

import (
	"context"
	"fmt"

	"domicile"
)

// Census counts the cell's subjects, live records (their sealed bytes)
// and objects (their sizes), in one statement.
func (s *Store) Census(ctx context.Context) (domicile.Census, error) {
	var c domicile.Census
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT COUNT(*) FROM subjects),
		(SELECT COUNT(*) FROM records WHERE body IS NOT NULL),
		(SELECT COALESCE(SUM(LENGTH(body)), 0)::BIGINT FROM records WHERE body IS NOT NULL),
		(SELECT COUNT(*) FROM objects WHERE blob IS NOT NULL),
		(SELECT COALESCE(SUM(size), 0)::BIGINT FROM objects)`).Scan(&c.Subjects, &c.Records, &c.RecordBytes, &c.Objects, &c.ObjectBytes)
	if err != nil {
		return c, fmt.Errorf("postgres: census: %w", err)
	}
	return c, nil
}

// PendingRequests lists the rights requests whose state is none of
// final, by deadline then id, at most limit.
func (s *Store) PendingRequests(ctx context.Context, final []string, limit int) ([]domicile.PendingRequest, error) {
	if final == nil {
		final = []string{}
	}
	rows, err := s.pool.Query(ctx, `SELECT id, kind, state, received, deadline FROM requests
		WHERE NOT (state = ANY($1)) ORDER BY deadline, id LIMIT $2`, final, max(limit, 0))
	if err != nil {
		return nil, fmt.Errorf("postgres: pending requests: %w", err)
	}
	defer rows.Close()
	out := []domicile.PendingRequest{}
	for rows.Next() {
		var r domicile.PendingRequest
		var received, deadline int64
		if err := rows.Scan(&r.ID, &r.Kind, &r.State, &received, &deadline); err != nil {
			return nil, fmt.Errorf("postgres: pending requests: %w", err)
		}
		r.Received, r.Deadline = nsTime(received), nsTime(deadline)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: pending requests: %w", err)
	}
	return out, nil
}
