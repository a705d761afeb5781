package transfer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"domicile"
	"domicile/postgres"
	"domicile/sqlite"
	"domicile/transfer"
)

// TestThresholdAcrossProcesses: two gateways, each on its own handle of
// the shared ledger as two cell processes have, decide transfers of the
// same legal entity at once, near the 10,000 sensitive-PI threshold of a
// security assessment. Whatever the interleaving, the threshold is never
// overshot (exactly as many pass as there was room for), and every
// transfer that passed is counted once: no count is lost.
//
// It runs on the SQLite ledger (two handles of one file, the flock) and,
// with DOMICILE_TEST_POSTGRES set, on the PostgreSQL ledger (two pools on
// one schema, the advisory lock), as cells on two machines have.
func TestThresholdAcrossProcesses(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		e := newEnv(t, march)
		thresholdAcrossProcesses(t, e, func() transfer.Store {
			led, err := sqlite.OpenLedger(context.Background(), filepath.Join(e.dir, "control"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { led.Close() })
			return led
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := os.Getenv("DOMICILE_TEST_POSTGRES")
		if dsn == "" {
			t.Skip("set DOMICILE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable to run it on PostgreSQL (bash .ci/run does)")
		}
		schema := pgSchema(t, dsn)
		open := func() transfer.Store {
			s, err := postgres.OpenShared(context.Background(), postgres.Config{DSN: dsn, Schema: schema})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s.Ledger()
		}
		e := newEnvOn(t, march, func(string) transfer.Store { return open() })
		thresholdAcrossProcesses(t, e, open)
	})
}

// pgSchema returns a fresh schema name, dropped when the test ends.
func pgSchema(t *testing.T, dsn string) string {
	var b [6]byte
	rand.Read(b[:])
	schema := "domicile_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// thresholdAcrossProcesses runs the test on e, whose gateway is one
// process, and a second gateway on the store second opens.
func thresholdAcrossProcesses(t *testing.T, e *env, second func() transfer.Store) {
	const room = 6
	e.seed(9_999-room, "2026-02-01", "whereabouts")
	ctx := context.Background()
	e.g.PutMechanism(ctx, e.admin, standardContract("sc-1", "2026-03-02", "2026-03-06"))
	led := second()
	other, err := transfer.New(ctx, transfer.Config{Store: led, Engine: lawEngine(t), Router: e.router, Now: e.clock.Now, Refresh: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	ids := make([]string, n)
	for i := range ids {
		ids[i] = string(rune('a'+i)) + "-subject"
		e.subject(ids[i])
		e.g.SetConsent(ctx, e.appCN, ids[i], domicile.ConsentSensitive, "s1", true)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, id := range ids {
		g := e.g
		if i%2 == 1 {
			g = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			_, errs[i] = g.Transfer(ctx, e.app, &transfer.Request{Destination: "US", Recipient: "Acme Support Inc.", Subjects: []string{id},
				Fields: map[string][]string{"location": {"lat", "lon"}}, Plain: true}, nil, &buf)
		}()
	}
	wg.Wait()
	passed := 0
	for _, err := range errs {
		if err == nil {
			passed++
			continue
		}
		if d := mustRefused(t, err); d.Law != "security_assessment" {
			t.Errorf("a refusal under %s (%v), want security_assessment", d.Law, d.Reasons)
		}
	}
	_, spi := e.counts()
	if passed != room {
		t.Errorf("%d transfers passed with room for %d: the threshold was overshot or room was lost (%v)", passed, room, errs)
	}
	if spi != 9_999-room+int64(passed) {
		t.Errorf("sensitive PI counted = %d, want %d + the %d that passed: a count was lost", spi, 9_999-room, passed)
	}
	if spi > 9_999 {
		t.Errorf("sensitive PI counted = %d: past the threshold without a security assessment", spi)
	}
}
