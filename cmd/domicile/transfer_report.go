package main

import (
	"context"
	"regexp"
	"sort"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/report"
	"domicile/transfer"
)

// gatewayTransfers gives the reports the gateway's ledger. A subject's
// transfers are found from its own log (each export and counted remote
// read is an event naming the transfer's id) and described from the
// ledger's records, which hold no subject ids.
type gatewayTransfers struct {
	rt *runtime
	g  *transfer.Gateway
}

var transferID = regexp.MustCompile(`\btransfer (\S+)`)

func (t gatewayTransfers) records(ctx context.Context, from, to time.Time) (map[string]*domicile.TransferRecord, error) {
	m := map[string]*domicile.TransferRecord{}
	err := t.g.Records(ctx, from, to, func(r *domicile.TransferRecord) error {
		c := *r
		m[r.ID] = &c
		return nil
	})
	return m, err
}

// SubjectTransfers lists the transfers named by the subject's events (an
// export's or a counted remote read's transfer id) with times in [from,
// to).
func (t gatewayTransfers) SubjectTransfers(ctx context.Context, events []domicile.StoredEvent, from, to time.Time) ([]report.TransferLine, error) {
	if len(events) == 0 {
		return nil, nil
	}
	recs, err := t.records(ctx, from, to)
	if err != nil {
		return nil, err
	}
	var out []report.TransferLine
	seen := map[string]bool{}
	for _, e := range events {
		if e.Time.Before(from) || !e.Time.Before(to) {
			continue
		}
		m := transferID.FindSubmatch(e.Committed)
		if m == nil {
			continue
		}
		r := recs[string(m[1])]
		if r == nil || seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		mech := r.Law
		if r.Mechanism != "" {
			mech = string(r.Kind) + " (" + r.Mechanism + ")"
		}
		out = append(out, report.TransferLine{Time: r.Time, Destination: r.Destination, Recipient: r.Recipient,
			Mechanism: mech, Reference: r.ID, Purpose: r.Purpose, Categories: r.Categories})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, nil
}

// Ledger returns the ledger's figures of the calendar years of [from, to).
func (t gatewayTransfers) Ledger(ctx context.Context, from, to time.Time) (*figures.Ledger, error) {
	return t.g.LedgerFigures(ctx, from, to)
}
