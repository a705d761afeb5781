package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"domicile"
)

// KeyStore is a cell's custody store of wrapped data keys, in its own
// SQLite file, apart from the cell database so that it is backed up (or
// not) under its own policy. secure_delete overwrites freed pages, and
// DeleteKeys checkpoints the WAL so no copy of a destroyed key stays in the
// log file either.
type KeyStore struct {
	db *sql.DB
}

// OpenKeyStore opens (creating if needed) the custody store in dir.
func OpenKeyStore(ctx context.Context, dir string) (*KeyStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: keystore: %w", err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "secure_delete(ON)"} {
		q.Add("_pragma", p)
	}
	path := filepath.Join(dir, "keys.db")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: keystore: %w", err)
	}
	db.SetMaxOpenConns(4)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS keys(
		ref BLOB NOT NULL, gen INTEGER NOT NULL, kek_version INTEGER NOT NULL, wrapped BLOB NOT NULL,
		fingerprint TEXT NOT NULL, created INTEGER NOT NULL, PRIMARY KEY(ref, gen)) WITHOUT ROWID;
		CREATE INDEX IF NOT EXISTS keys_version ON keys(kek_version, ref);`); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: keystore schema: %w", err)
	}
	os.Chmod(path, 0o600)
	return &KeyStore{db: db}, nil
}

// Close closes the store.
func (k *KeyStore) Close() error { return k.db.Close() }

// PutKey stores a wrapped key durably.
func (k *KeyStore) PutKey(ctx context.Context, w domicile.WrappedKey) error {
	_, err := k.db.ExecContext(ctx, `INSERT INTO keys(ref, gen, kek_version, wrapped, fingerprint, created) VALUES(?,?,?,?,?,?)`,
		w.Ref[:], int(w.Gen), int64(w.KEKVersion), w.Wrapped, w.Fingerprint, w.Created.UnixNano())
	if err != nil {
		return fmt.Errorf("sqlite: put key: %w", err)
	}
	return nil
}

// PutKeys stores wrapped keys durably in one transaction, all or none.
func (k *KeyStore) PutKeys(ctx context.Context, ws []domicile.WrappedKey) error {
	if len(ws) > domicile.MaxKeysPerBatch {
		return domicile.Errorf(domicile.EInvalid, "put keys: %d keys in one batch, at most %d", len(ws), domicile.MaxKeysPerBatch)
	}
	if len(ws) == 0 {
		return nil
	}
	tx, err := k.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: put keys: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO keys(ref, gen, kek_version, wrapped, fingerprint, created) VALUES(?,?,?,?,?,?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return fmt.Errorf("sqlite: put keys: %w", err)
	}
	defer st.Close()
	for _, w := range ws {
		res, err := st.ExecContext(ctx, w.Ref[:], int(w.Gen), int64(w.KEKVersion), w.Wrapped, w.Fingerprint, w.Created.UnixNano())
		if err != nil {
			return fmt.Errorf("sqlite: put keys: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return domicile.ErrVersionMismatch
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: put keys: %w", err)
	}
	return nil
}

// Key returns a wrapped key.
func (k *KeyStore) Key(ctx context.Context, ref domicile.SubjectRef, gen uint8) (*domicile.WrappedKey, error) {
	w := &domicile.WrappedKey{Ref: ref, Gen: gen}
	var v, created int64
	err := k.db.QueryRowContext(ctx, `SELECT kek_version, wrapped, fingerprint, created FROM keys WHERE ref=? AND gen=?`, ref[:], int(gen)).
		Scan(&v, &w.Wrapped, &w.Fingerprint, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: key: %w", err)
	}
	w.KEKVersion, w.Created = uint32(v), nsTime(created)
	return w, nil
}

// ReplaceKey swaps in a re-wrapped key if the stored one is still under
// fromVersion.
func (k *KeyStore) ReplaceKey(ctx context.Context, w domicile.WrappedKey, fromVersion uint32) error {
	res, err := k.db.ExecContext(ctx, `UPDATE keys SET kek_version=?, wrapped=? WHERE ref=? AND gen=? AND kek_version=?`,
		int64(w.KEKVersion), w.Wrapped, w.Ref[:], int(w.Gen), int64(fromVersion))
	if err != nil {
		return fmt.Errorf("sqlite: replace key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return domicile.ErrVersionMismatch
	}
	return nil
}

// KeysBelow lists keys wrapped under a KEK version below version.
func (k *KeyStore) KeysBelow(ctx context.Context, version uint32, after domicile.SubjectRef, limit int) ([]domicile.WrappedKey, error) {
	// The zero reference is "from the start", so that it is not skipped
	// itself.
	rows, err := k.db.QueryContext(ctx, `SELECT ref, gen, kek_version, wrapped, fingerprint, created FROM keys
		WHERE kek_version < ? AND (ref > ? OR ?) ORDER BY ref, gen LIMIT ?`, int64(version), after[:], after.IsZero(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: keys: %w", err)
	}
	defer rows.Close()
	var out []domicile.WrappedKey
	for rows.Next() {
		var w domicile.WrappedKey
		var ref []byte
		var gen int
		var v, created int64
		if err := rows.Scan(&ref, &gen, &v, &w.Wrapped, &w.Fingerprint, &created); err != nil {
			return nil, fmt.Errorf("sqlite: keys: %w", err)
		}
		copy(w.Ref[:], ref)
		w.Gen, w.KEKVersion, w.Created = uint8(gen), uint32(v), nsTime(created)
		out = append(out, w)
	}
	return out, rows.Err()
}

// CountByVersion counts keys per KEK version.
func (k *KeyStore) CountByVersion(ctx context.Context) (map[uint32]int64, error) {
	rows, err := k.db.QueryContext(ctx, `SELECT kek_version, COUNT(*) FROM keys GROUP BY kek_version`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: count keys: %w", err)
	}
	defer rows.Close()
	out := map[uint32]int64{}
	for rows.Next() {
		var v, n int64
		if err := rows.Scan(&v, &n); err != nil {
			return nil, fmt.Errorf("sqlite: count keys: %w", err)
		}
		out[uint32(v)] = n
	}
	return out, rows.Err()
}

// DeleteKeys destroys every key of ref and checkpoints the WAL so that no
// copy of them remains in the database files.
func (k *KeyStore) DeleteKeys(ctx context.Context, ref domicile.SubjectRef) (int, error) {
	res, err := k.db.ExecContext(ctx, `DELETE FROM keys WHERE ref=?`, ref[:])
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete keys: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := k.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return int(n), fmt.Errorf("sqlite: checkpoint after delete: %w", err)
	}
	return int(n), nil
}

var _ domicile.KeyStore = (*KeyStore)(nil)
