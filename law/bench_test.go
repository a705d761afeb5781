package law

import (
	"testing"
	"time"
)

// BenchmarkAssess assesses a parsed fact file with the compiled rules.
func BenchmarkAssess(b *testing.B) {
	e := MustEngine(b)
	in, err := e.Parse([]byte("transfers_abroad: true\ntransfer_contains_pi: true\npi_individuals_ytd: 100000\nrecipient_country: US\npi_individuals_total: 400000\n"))
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Assess(in, at); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecide is the gateway's path: validate facts and decide.
func BenchmarkDecide(b *testing.B) {
	e := MustEngine(b)
	f := Facts{"transfers_abroad": true, "transfer_contains_pi": true, "pi_individuals_ytd": int64(50000), "recipient_country": "US"}
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(f, at); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNew compiles every rule.
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := New(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentAssess runs assessments from many goroutines on one engine
// (run with -race): the engine is immutable after New.
func TestConcurrentAssess(t *testing.T) {
	e := MustEngine(t)
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	done := make(chan string, 16)
	for i := range 16 {
		go func() {
			n := int64(99990 + i)
			rep, err := e.Decide(Facts{"transfers_abroad": true, "transfer_contains_pi": true, "pi_individuals_ytd": n}, at)
			if err != nil {
				done <- err.Error()
				return
			}
			done <- rep.MechanismName()
		}()
	}
	for i := 0; i < 16; i++ {
		if got := <-done; got != "exempt" && got != "sc_or_certification" {
			t.Errorf("concurrent Decide = %s", got)
		}
	}
}
