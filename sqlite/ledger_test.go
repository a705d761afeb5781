package sqlite_test

import (
	"context"
	"testing"
	"time"

	"domicile"
	"domicile/sqlite"
	"domicile/transfer"
)

var _ transfer.Store = (*sqlite.Ledger)(nil)

func ref(b byte) domicile.SubjectRef { return domicile.SubjectRef{b} }

// TestLedger checks distinct counting, membership, consents, the registry,
// records and warnings, and that all of it survives a reopen.
func TestLedger(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := sqlite.OpenLedger(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	k := domicile.CountKey{Entity: "acme", Year: 2026, Source: "CN", Class: domicile.ClassPI}
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i, tc := range []struct {
		refs  []domicile.SubjectRef
		added int64
	}{{[]domicile.SubjectRef{ref(1), ref(2)}, 2}, {[]domicile.SubjectRef{ref(2), ref(3), ref(3)}, 1}, {nil, 0}} {
		got, err := l.Record(ctx, &domicile.TransferRecord{ID: string(rune('a' + i)), Time: t0.Add(time.Duration(i) * time.Hour)}, []domicile.CountAdd{{Key: k, Refs: tc.refs}})
		if err != nil || got[0] != tc.added {
			t.Fatalf("Record %d = %v, %v; want %d added", i, got, err, tc.added)
		}
	}
	other := k
	other.Year = 2027
	n, err := l.Counts(ctx, []domicile.CountKey{k, other})
	if err != nil || n[0] != 3 || n[1] != 0 {
		t.Fatalf("Counts = %v, %v; want [3 0]", n, err)
	}
	in, err := l.Members(ctx, k, []domicile.SubjectRef{ref(3), ref(4), ref(1)})
	if err != nil || !in[0] || in[1] || !in[2] {
		t.Fatalf("Members = %v, %v", in, err)
	}
	if first, _ := l.Warned(ctx, "acme", 2026, "pi_individuals_ytd", 100000, 80); !first {
		t.Error("first warning not new")
	}
	if first, _ := l.Warned(ctx, "acme", 2026, "pi_individuals_ytd", 100000, 80); first {
		t.Error("repeated warning reported new")
	}
	l.PutConsent(ctx, &domicile.Consent{Subject: ref(1), Kind: domicile.ConsentCrossBorder, TextVersion: "v1", Granted: true, Time: t0})
	l.PutConsent(ctx, &domicile.Consent{Subject: ref(1), Kind: domicile.ConsentCrossBorder, TextVersion: "v2", Granted: false, Time: t0})
	if err := l.PutMechanism(ctx, "sc-1", []byte(`{"id":"sc-1","signed":"2026-03-02"}`)); err != nil {
		t.Fatal(err)
	}
	l.Close()

	l, err = sqlite.OpenLedger(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cs, err := l.Consent(ctx, domicile.ConsentCrossBorder, []domicile.SubjectRef{ref(1), ref(2)})
	if err != nil || cs[0] == nil || cs[0].Granted || cs[0].TextVersion != "v2" || cs[1] != nil {
		t.Fatalf("Consent = %+v, %v; want ref 1 withdrawn at v2, ref 2 none", cs, err)
	}
	ms, err := l.Mechanisms(ctx)
	if err != nil || len(ms) != 1 || string(ms[0]) != `{"id":"sc-1","signed":"2026-03-02"}` {
		t.Fatalf("Mechanisms = %+v, %v", ms, err)
	}
	var ids []string
	err = l.Records(ctx, t0.Add(30*time.Minute), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), func(r *domicile.TransferRecord) error {
		ids = append(ids, r.ID)
		return nil
	})
	if err != nil || len(ids) != 2 || ids[0] != "b" {
		t.Fatalf("Records from 00:30 = %v, %v; want [b c]", ids, err)
	}
	// Each stored record says how many people it added to the total.
	var newPI []int64
	l.Records(ctx, t0, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), func(r *domicile.TransferRecord) error {
		newPI = append(newPI, r.NewPI)
		return nil
	})
	if len(newPI) != 3 || newPI[0] != 2 || newPI[1] != 1 || newPI[2] != 0 {
		t.Errorf("stored records' new_pi = %v, want [2 1 0]", newPI)
	}
	bd, err := l.Breakdown(ctx, "acme", 2026)
	if err != nil || len(bd) != 1 || bd[0].N != 3 {
		t.Fatalf("Breakdown = %+v, %v", bd, err)
	}
}
