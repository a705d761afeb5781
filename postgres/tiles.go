package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"domicile/internal/hashtile"
)

// The log's stored Merkle hashes are tiles (package hashtile): the
// complete ones in the tiles table, written in the transaction of the
// events that complete them, and the partial ones in the writer's Tail,
// rebuilt from the last events on open. An append reads nothing from
// the database.

// querier is what reading tiles and leaves needs: a connection, a
// transaction or the pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// leafHashes returns the record hashes of the events [from, to).
func leafHashes(ctx context.Context, q querier, from, to int64) ([]tlog.Hash, error) {
	rows, err := q.Query(ctx, `SELECT idx, leaf FROM events WHERE idx >= $1 AND idx < $2 ORDER BY idx`, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]tlog.Hash, 0, to-from)
	for rows.Next() {
		var idx int64
		var leaf []byte
		if err := rows.Scan(&idx, &leaf); err != nil {
			return nil, err
		}
		if idx != from+int64(len(out)) {
			return nil, fmt.Errorf("event %d missing", from+int64(len(out)))
		}
		out = append(out, tlog.RecordHash(leaf))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if int64(len(out)) != to-from {
		return nil, fmt.Errorf("events [%d, %d): %d found", from, to, len(out))
	}
	return out, nil
}

// storedTiles returns the stored tiles [from, to) of a tile level, in
// order.
func storedTiles(ctx context.Context, q querier, level int, from, to int64) ([][]byte, error) {
	rows, err := q.Query(ctx, `SELECT n, tile FROM tiles WHERE level = $1 AND n >= $2 AND n < $3 ORDER BY n`, level, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var n int64
		var b []byte
		if err := rows.Scan(&n, &b); err != nil {
			return nil, err
		}
		if n != from+int64(len(out)) {
			return nil, fmt.Errorf("tile %d/%d missing", level, from+int64(len(out)))
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// tileCounts returns how many tiles each tile level stores.
func tileCounts(ctx context.Context, q querier) (map[int]int64, error) {
	rows, err := q.Query(ctx, `SELECT level, count(*) FROM tiles GROUP BY level`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int]int64{}
	for rows.Next() {
		var level int
		var n int64
		if err := rows.Scan(&level, &n); err != nil {
			return nil, err
		}
		out[level] = n
	}
	return out, rows.Err()
}

// tileProblems describes how the stored tiles' counts differ from those
// of a log of size leaves, one a line; nil when they agree.
func tileProblems(counts map[int]int64, size int64) []string {
	var out []string
	for level := 0; level <= hashtile.MaxLevel; level++ {
		if want := hashtile.CompleteTiles(level, size); counts[level] != want {
			out = append(out, fmt.Sprintf("tiles: level %d has %d, a log of %d leaves has %d", level, counts[level], size, want))
		}
	}
	for level := range counts {
		if level < 0 || level > hashtile.MaxLevel {
			out = append(out, fmt.Sprintf("tiles: level %d does not exist", level))
		}
	}
	return out
}

// insertTiles queues the insertion of tiles in the batch.
func insertTiles(pb *pgx.Batch, tiles []hashtile.Tile) {
	levels, ns, bs := make([]int32, len(tiles)), make([]int64, len(tiles)), make([][]byte, len(tiles))
	for i, t := range tiles {
		levels[i], ns[i], bs[i] = int32(t.Key.Level), t.Key.N, t.Data
	}
	pb.Queue(`INSERT INTO tiles(level, n, tile) SELECT * FROM unnest($1::INT[], $2::BIGINT[], $3::BYTEA[])`, levels, ns, bs)
}

// rebuildTiles replaces every stored tile of the log of size leaves by
// one recomputed from the events, in tx.
func rebuildTiles(ctx context.Context, tx pgx.Tx, size int64) error {
	if _, err := tx.Exec(ctx, `DELETE FROM tiles`); err != nil {
		return err
	}
	t := hashtile.New()
	for start := int64(0); start < size; start += rebuildChunk {
		end := min(start+rebuildChunk, size)
		hs, err := leafHashes(ctx, tx, start, end)
		if err != nil {
			return err
		}
		for _, h := range hs {
			t.Append(h)
		}
		if p := t.Pending(); len(p) > 0 {
			var pb pgx.Batch
			insertTiles(&pb, p)
			if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
				return err
			}
			if err := t.Flush(func(hashtile.Tile) error { return nil }); err != nil {
				return err
			}
		}
	}
	return nil
}

// restoreTail rebuilds the writer's partial tiles of the log of size
// leaves from the last events and stored tiles, on the writer's
// connection; if the stored tiles are not those of size leaves (a log
// written before tiles, or tiles lost), it rebuilds them all first.
func (s *Store) restoreTail(ctx context.Context) (*hashtile.Tail, error) {
	counts, err := tileCounts(ctx, s.conn)
	if err != nil {
		return nil, err
	}
	if tileProblems(counts, s.size) != nil {
		if err := pgx.BeginFunc(ctx, s.conn, func(tx pgx.Tx) error { return rebuildTiles(ctx, tx, s.size) }); err != nil {
			return nil, fmt.Errorf("rebuild tiles: %w", err)
		}
	}
	return hashtile.Restore(s.size,
		func(from, to int64) ([]tlog.Hash, error) { return leafHashes(ctx, s.conn, from, to) },
		func(level int, from, to int64) ([][]byte, error) { return storedTiles(ctx, s.conn, level, from, to) })
}

// viewTile reads stored tile k for the Tail's readers (hashtile.TileViewer).
func (s *Store) viewTile(ctx context.Context) hashtile.TileViewer {
	return func(k hashtile.Key, use func(tile []byte)) (bool, error) {
		var b []byte
		err := s.pool.QueryRow(ctx, `SELECT tile FROM tiles WHERE level = $1 AND n = $2`, k.Level, k.N).Scan(&b)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		use(b)
		return true, nil
	}
}

// ReadHashes returns stored Merkle hashes (tlog.StoredHashIndex order) of
// committed events: from the writer's partial tiles, the Tail's cache of
// stored tiles, or the tiles table, one row per tile.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([][32]byte, error) {
	limit := tlog.StoredHashIndex(0, s.committed.Load())
	for _, id := range indexes {
		if id >= limit {
			return nil, fmt.Errorf("postgres: read hashes: hash %d is beyond the committed log", id)
		}
	}
	hs, err := s.tail.Read(indexes, s.viewTile(ctx))
	if err != nil {
		return nil, wrap("read hashes", err)
	}
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out, nil
}

// CachesHashes reports that the store keeps in memory the hashes worth
// keeping (its partial tiles and recent stored tiles), so a transparency
// log over it needs no cache of its own.
func (s *Store) CachesHashes() bool { return true }
