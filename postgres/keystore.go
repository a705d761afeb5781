package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"domicile"
)

// KeyStore is a cell's custody store of wrapped data keys, in its own
// schema, apart from the cell's so that it can be placed, backed up and
// retained under its own policy. It is safe for concurrent use.
//
// A deleted row stays on disk, and in the write-ahead log, until
// PostgreSQL reuses the space: crypto-shredding on PostgreSQL relies on
// the short retention of WAL archives and backups of this schema (see
// doc/postgres.md).
type KeyStore struct{ pool *pgxpool.Pool }

// OpenKeyStore opens the custody store in schema (created with its table
// if absent) of the database at dsn.
func OpenKeyStore(ctx context.Context, dsn, schema string) (*KeyStore, error) {
	return OpenKeyStoreConfig(ctx, Config{DSN: dsn, Schema: schema})
}

// OpenKeyStoreConfig opens the custody store cfg says.
func OpenKeyStoreConfig(ctx context.Context, cfg Config) (*KeyStore, error) {
	_, pool, err := connect(ctx, cfg, "keys")
	if err != nil {
		return nil, err
	}
	return &KeyStore{pool: pool}, nil
}

// Close closes the store's connections.
func (k *KeyStore) Close() error {
	k.pool.Close()
	return nil
}

// PutKey stores a wrapped key durably; it fails if (ref, gen) exists.
func (k *KeyStore) PutKey(ctx context.Context, w domicile.WrappedKey) error {
	_, err := k.pool.Exec(ctx, `INSERT INTO keys(ref, gen, kek_version, wrapped, fingerprint, created) VALUES($1,$2,$3,$4,$5,$6)`,
		w.Ref[:], int64(w.Gen), int64(w.KEKVersion), w.Wrapped, w.Fingerprint, w.Created.UnixNano())
	if err != nil {
		return wrap("put key", err)
	}
	return nil
}

// PutKeys stores wrapped keys durably in one transaction, all or none:
// it returns ErrVersionMismatch, storing nothing, if a (ref, gen) exists
// or appears twice.
func (k *KeyStore) PutKeys(ctx context.Context, ws []domicile.WrappedKey) error {
	if len(ws) > domicile.MaxKeysPerBatch {
		return domicile.Errorf(domicile.EInvalid, "put keys: %d keys in one batch, at most %d", len(ws), domicile.MaxKeysPerBatch)
	}
	if len(ws) == 0 {
		return nil
	}
	refs, wrapped := make([][]byte, len(ws)), make([][]byte, len(ws))
	gens, versions, created := make([]int64, len(ws)), make([]int64, len(ws)), make([]int64, len(ws))
	fps := make([]string, len(ws))
	for i, w := range ws {
		refs[i], gens[i], versions[i], wrapped[i], fps[i], created[i] = w.Ref[:], int64(w.Gen), int64(w.KEKVersion), w.Wrapped, w.Fingerprint, w.Created.UnixNano()
	}
	err := pgx.BeginFunc(ctx, k.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO keys(ref, gen, kek_version, wrapped, fingerprint, created)
			SELECT * FROM unnest($1::bytea[], $2::int8[], $3::int8[], $4::bytea[], $5::text[], $6::int8[]) ON CONFLICT DO NOTHING`,
			refs, gens, versions, wrapped, fps, created)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(ws)) {
			return domicile.ErrVersionMismatch
		}
		return nil
	})
	if err != nil && !errors.Is(err, domicile.ErrVersionMismatch) {
		return wrap("put keys", err)
	}
	return err
}

// Key returns a wrapped key, or ErrNotFound.
func (k *KeyStore) Key(ctx context.Context, ref domicile.SubjectRef, gen uint8) (*domicile.WrappedKey, error) {
	w := &domicile.WrappedKey{Ref: ref, Gen: gen}
	var v, created int64
	err := k.pool.QueryRow(ctx, `SELECT kek_version, wrapped, fingerprint, created FROM keys WHERE ref=$1 AND gen=$2`, ref[:], int64(gen)).
		Scan(&v, &w.Wrapped, &w.Fingerprint, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, domicile.ErrNotFound
	}
	if err != nil {
		return nil, wrap("key", err)
	}
	w.KEKVersion, w.Created = uint32(v), nsTime(created)
	return w, nil
}

// ReplaceKey swaps in a re-wrapped key if the stored one is still under
// fromVersion, and returns ErrVersionMismatch otherwise.
func (k *KeyStore) ReplaceKey(ctx context.Context, w domicile.WrappedKey, fromVersion uint32) error {
	tag, err := k.pool.Exec(ctx, `UPDATE keys SET kek_version=$1, wrapped=$2 WHERE ref=$3 AND gen=$4 AND kek_version=$5`,
		int64(w.KEKVersion), w.Wrapped, w.Ref[:], int64(w.Gen), int64(fromVersion))
	if err != nil {
		return wrap("replace key", err)
	}
	if tag.RowsAffected() == 0 {
		return domicile.ErrVersionMismatch
	}
	return nil
}

// KeysBelow lists keys wrapped under a KEK version below version, after
// the cursor ref, in (ref, gen) order.
func (k *KeyStore) KeysBelow(ctx context.Context, version uint32, after domicile.SubjectRef, limit int) ([]domicile.WrappedKey, error) {
	// The zero reference is "from the start", so that it is not skipped
	// itself.
	rows, err := k.pool.Query(ctx, `SELECT ref, gen, kek_version, wrapped, fingerprint, created FROM keys
		WHERE kek_version < $1 AND (ref > $2 OR $4) ORDER BY ref, gen LIMIT $3`, int64(version), after[:], max(limit, 0), after.IsZero())
	if err != nil {
		return nil, wrap("keys", err)
	}
	defer rows.Close()
	var out []domicile.WrappedKey
	for rows.Next() {
		var w domicile.WrappedKey
		var ref []byte
		var gen, v, created int64
		if err := rows.Scan(&ref, &gen, &v, &w.Wrapped, &w.Fingerprint, &created); err != nil {
			return nil, wrap("keys", err)
		}
		copy(w.Ref[:], ref)
		w.Gen, w.KEKVersion, w.Created = uint8(gen), uint32(v), nsTime(created)
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("keys", err)
	}
	return out, nil
}

// CountByVersion counts keys per KEK version.
func (k *KeyStore) CountByVersion(ctx context.Context) (map[uint32]int64, error) {
	rows, err := k.pool.Query(ctx, `SELECT kek_version, COUNT(*) FROM keys GROUP BY kek_version`)
	if err != nil {
		return nil, wrap("count keys", err)
	}
	defer rows.Close()
	out := map[uint32]int64{}
	for rows.Next() {
		var v, n int64
		if err := rows.Scan(&v, &n); err != nil {
			return nil, wrap("count keys", err)
		}
		out[uint32(v)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("count keys", err)
	}
	return out, nil
}

// DeleteKeys destroys every key of ref durably and returns how many it
// destroyed. The rows' bytes remain in dead tuples until vacuum reuses
// their space, and in WAL segments until they are recycled.
func (k *KeyStore) DeleteKeys(ctx context.Context, ref domicile.SubjectRef) (int, error) {
	tag, err := k.pool.Exec(ctx, `DELETE FROM keys WHERE ref=$1`, ref[:])
	if err != nil {
		return 0, wrap("delete keys", err)
	}
	return int(tag.RowsAffected()), nil
}

var _ domicile.KeyStore = (*KeyStore)(nil)
