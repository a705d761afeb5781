package postgres_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"domicile"
	"domicile/domiciletest"
	"domicile/internal/hashtile"
)

// TestLogIntegrity runs the integrity suite on PostgreSQL: tiles and
// events are tampered with in their tables.
func TestLogIntegrity(t *testing.T) {
	testDSN(t)
	domiciletest.TestLogIntegrity(t, func(t *testing.T) (func() domiciletest.IntegrityStore, domiciletest.Tamper) {
		schema := newSchema(t)
		blobs := filepath.Join(t.TempDir(), "blobs")
		open := func() domiciletest.IntegrityStore { return mustOpen(t, schema, blobs) }
		exec := func(t *testing.T, q string, args ...any) {
			t.Helper()
			ctx := context.Background()
			c, err := pgx.Connect(ctx, testDSN(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, `SET search_path TO `+schema); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Exec(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		return open, domiciletest.Tamper{
			FlipHash: func(t *testing.T, id int64) {
				k, pos := hashtile.Locate(id)
				exec(t, `UPDATE tiles SET tile = set_byte(tile, $3, get_byte(tile, $3) # 90) WHERE level=$1 AND n=$2`, k.Level, k.N, pos*32+7)
			},
			SetEvent: func(t *testing.T, idx int64, column string, value []byte) {
				exec(t, `UPDATE events SET `+column+`=$1 WHERE idx=$2`, value, idx)
			},
			DeleteEventsFrom: func(t *testing.T, idx int64) { exec(t, `DELETE FROM events WHERE idx>=$1`, idx) },
		}
	})
}

// TestCheckDatabase: a sound store passes; a missing event row and a
// missing tile are reported.
func TestCheckDatabase(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := mustOpen(t, schema, filepath.Join(t.TempDir(), "blobs"))
	defer s.Close()
	for i := range 300 {
		domiciletest.MustCommit(t, ctx, s, batchOf(domiciletest.LeafEntry(i)))
	}
	if rep, err := s.CheckDatabase(ctx); err != nil || rep != "" {
		t.Fatalf("CheckDatabase of a sound store = %q, %v", rep, err)
	}
	c, err := pgx.Connect(ctx, testDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `DELETE FROM `+schema+`.events WHERE idx=3; DELETE FROM `+schema+`.tiles WHERE level=0 AND n=0`); err != nil {
		t.Fatal(err)
	}
	rep, err := s.CheckDatabase(ctx)
	if err != nil || !contains(rep, "events: 299 rows") || !contains(rep, "tiles: level 0 has 0") {
		t.Fatalf("CheckDatabase of a damaged store = %q, %v", rep, err)
	}
}

func batchOf(e *domicile.LogEntry) *domicile.Batch {
	return &domicile.Batch{Events: []*domicile.LogEntry{e}}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
