package transfer_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"domicile"
	"domicile/cell"
	"domicile/transfer"
)

// seedLedger adds n distinct subjects to the CN non-sensitive count of
// 2026 (total, mechanism and destination), through the store directly.
func seedLedger(b *testing.B, e *env, n int) {
	ctx := context.Background()
	key := func(dim, v string) domicile.CountKey {
		return domicile.CountKey{Entity: "demo", Year: 2026, Source: "CN", Class: domicile.ClassPI, Dim: dim, Value: v}
	}
	const chunk = 100_000
	for start := 0; start < n; start += chunk {
		refs := make([]domicile.SubjectRef, 0, chunk)
		for i := start; i < min(start+chunk, n); i++ {
			var x [8]byte
			binary.BigEndian.PutUint64(x[:], uint64(i))
			refs = append(refs, sha256.Sum256(x[:]))
		}
		r := &domicile.TransferRecord{ID: "seed-" + string(rune('a'+start/chunk)), Time: march, Entity: "demo", Year: 2026, Source: "CN", Channel: domicile.ChannelImport}
		if _, err := e.store.Record(ctx, r, []domicile.CountAdd{{Key: key("", ""), Refs: refs}, {Key: key("mechanism", "exempt"), Refs: refs},
			{Key: key("destination", "US"), Refs: refs}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGateRemoteRead measures gate decisions on a ledger of
// 1,000,000 people: a read from the US of a subject counted already this
// year (the ledger lookup, the law engine, the mechanism check; no write).
// Run: go test -run '^$' -bench GateRemoteRead -benchtime 5000x ./transfer/
func BenchmarkGateRemoteRead(b *testing.B) {
	e := newEnv(b, march)
	seedLedger(b, e, 1_000_000)
	ctx := context.Background()
	e.subject("a")
	if _, err := e.g.PutMechanism(ctx, e.admin, securityAssessment()); err != nil {
		b.Fatal(err)
	}
	c, k, _ := e.router.Locate(ctx, "a")
	rr := cell.RemoteRead{Cell: c.Config(), Actor: e.app, Subject: k,
		Fields: map[string][]string{"profile": {"name"}}, Categories: map[string]domicile.Category{"profile.name": domicile.Personal}}
	if _, err := e.g.RemoteAccess(ctx, rr); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.g.RemoteAccess(ctx, rr); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// BenchmarkGateDecide measures dry-run decisions of an export request of
// 100 subjects (counted already) on a ledger of 1,000,000 people.
// Run: go test -run '^$' -bench GateDecide -benchtime 200x ./transfer/
func BenchmarkGateDecide(b *testing.B) {
	e := newEnv(b, march)
	seedLedger(b, e, 1_000_000)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 100; i++ {
		id := "s" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		e.subject(id)
		ids = append(ids, id)
	}
	e.g.PutMechanism(ctx, e.admin, securityAssessment())
	req := messageRequest(ids...)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := e.g.Decide(ctx, e.app, req)
		if err != nil || !d.Allowed {
			b.Fatal(err, d)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// securityAssessment is an approval the 1,000,000-person ledger needs
// (CN.CBDF.7).
func securityAssessment() transfer.Mechanism {
	m := standardContract("sa-1", "2026-03-02", "")
	m.Kind, m.Signed, m.Approved, m.Reference = domicile.MechSecurityAssessment, "", "2025-06-01", "CAC-SA-2025-001"
	return m
}
