package transfer_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"domicile"
	"domicile/sqlite"
	"domicile/transfer"
)

// TestThresholdAcrossProcesses: two gateways, each on its own handle of
// the shared ledger as two cell processes have, decide transfers of the
// same legal entity at once, near the 10,000 sensitive-PI threshold of a
// security assessment. Whatever the interleaving, the threshold is never
// overshot (exactly as many pass as there was room for), and every
// transfer that passed is counted once: no count is lost.
func TestThresholdAcrossProcesses(t *testing.T) {
	e := newEnv(t, march)
	const room = 6
	e.seed(9_999-room, "2026-02-01", "whereabouts")
	ctx := context.Background()
	e.g.PutMechanism(ctx, e.admin, standardContract("sc-1", "2026-03-02", "2026-03-06"))
	led, err := sqlite.OpenLedger(ctx, filepath.Join(e.dir, "control"))
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
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
