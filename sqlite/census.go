package sqlite

import (
	"context"
	"fmt"
	"strings"

	"domicile"
)

// Census counts the cell's subjects, live records (their sealed bytes)
// and objects (their sizes), in one read transaction.
func (s *Store) Census(ctx context.Context) (domicile.Census, error) {
	var c domicile.Census
	err := s.rdb.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM subjects),
		(SELECT COUNT(*) FROM records WHERE body IS NOT NULL),
		(SELECT COALESCE(SUM(LENGTH(body)), 0) FROM records WHERE body IS NOT NULL),
		(SELECT COUNT(*) FROM objects WHERE blob IS NOT NULL),
		(SELECT COALESCE(SUM(size), 0) FROM objects)`).Scan(&c.Subjects, &c.Records, &c.RecordBytes, &c.Objects, &c.ObjectBytes)
	if err != nil {
		return c, fmt.Errorf("sqlite: census: %w", err)
	}
	return c, nil
}

// PendingRequests lists the rights requests whose state is none of
// final, by deadline then id, at most limit.
func (s *Store) PendingRequests(ctx context.Context, final []string, limit int) ([]domicile.PendingRequest, error) {
	args := make([]any, 0, len(final)+1)
	for _, f := range final {
		args = append(args, f)
	}
	args = append(args, max(limit, 0))
	q := `SELECT id, kind, state, received, deadline FROM requests`
	if len(final) > 0 {
		q += ` WHERE state NOT IN (` + strings.TrimSuffix(strings.Repeat("?,", len(final)), ",") + `)`
	}
	rows, err := s.rdb.QueryContext(ctx, q+` ORDER BY deadline, id LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending requests: %w", err)
	}
	defer rows.Close()
	out := []domicile.PendingRequest{}
	for rows.Next() {
		var r domicile.PendingRequest
		var received, deadline int64
		if err := rows.Scan(&r.ID, &r.Kind, &r.State, &received, &deadline); err != nil {
			return nil, fmt.Errorf("sqlite: pending requests: %w", err)
		}
		r.Received, r.Deadline = nsTime(received), nsTime(deadline)
		out = append(out, r)
	}
	return out, rows.Err()
}
