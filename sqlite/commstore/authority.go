package commstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"domicile"
	"domicile/authority"
)

// openDocDB opens (creating if needed) a small SQLite database file in
// dir with the given schema, durable on every commit.
func openDocDB(ctx context.Context, dir, file, schema string) (*sql.DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", file, err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, file)+"?"+q.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", file, err)
	}
	db.SetMaxOpenConns(4)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %s schema: %w", file, err)
	}
	return db, nil
}

// Authority keeps authority requests in <dir>/authority.db (the control
// directory). A request holds subject references, never raw ids. It
// implements authority.Store.
type Authority struct{ db *sql.DB }

var _ authority.Store = (*Authority)(nil)

// OpenAuthority opens (creating if needed) the authority request store in dir.
func OpenAuthority(ctx context.Context, dir string) (*Authority, error) {
	db, err := openDocDB(ctx, dir, "authority.db", `
		CREATE TABLE IF NOT EXISTS requests(id TEXT PRIMARY KEY, received INTEGER NOT NULL, doc BLOB NOT NULL);`)
	if err != nil {
		return nil, err
	}
	return &Authority{db: db}, nil
}

// Close closes the store.
func (a *Authority) Close() error { return a.db.Close() }

// Put inserts or replaces a request.
func (a *Authority) Put(ctx context.Context, r *authority.Request) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("sqlite: authority: %w", err)
	}
	_, err = a.db.ExecContext(ctx, `INSERT INTO requests(id, received, doc) VALUES(?,?,?)
		ON CONFLICT(id) DO UPDATE SET doc=excluded.doc`, r.ID, r.Received.UnixNano(), doc)
	if err != nil {
		return fmt.Errorf("sqlite: put request: %w", err)
	}
	return nil
}

// Get returns a request, or domicile.ErrNotFound.
func (a *Authority) Get(ctx context.Context, id string) (*authority.Request, error) {
	var doc []byte
	err := a.db.QueryRowContext(ctx, `SELECT doc FROM requests WHERE id=?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: request: %w", err)
	}
	var r authority.Request
	if err := json.Unmarshal(doc, &r); err != nil {
		return nil, fmt.Errorf("sqlite: request %s: %w", id, err)
	}
	return &r, nil
}

// List returns every request, oldest first.
func (a *Authority) List(ctx context.Context) ([]*authority.Request, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT doc FROM requests ORDER BY received, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: requests: %w", err)
	}
	defer rows.Close()
	var out []*authority.Request
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, err
		}
		var r authority.Request
		if err := json.Unmarshal(doc, &r); err != nil {
			return nil, fmt.Errorf("sqlite: request: %w", err)
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}
