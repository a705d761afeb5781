package main

import (
	"context"
	"regexp"
	"sort"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/law"
	"domicile/notice"
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

// transferID finds the id of the transfer an event names ("transfer
// trf_…"), wherever it stands in the event's detail.
var transferID = regexp.MustCompile(`\btransfer (trf_[0-9a-f]+)\b`)

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

// planLedger returns the change plans' reader of rt's transfer ledger, or
// nil when no transfer gateway is wired (the plan then says it did not
// read the ledger).
func planLedger(rt *runtime) notice.LedgerFunc {
	g := rt.gateway
	if g == nil {
		return nil
	}
	return func(ctx context.Context, src domicile.Jurisdiction) (*figures.Outlook, error) {
		return outlookOf(g.Assessment(ctx, src))
	}
}

// ledgerReader is what a plan reads of a transfer ledger it opens itself.
type ledgerReader interface {
	Breakdown(ctx context.Context, entity string, year int) ([]domicile.Count, error)
}

// storedLedger returns a change plan's reader of a transfer ledger read
// directly (`notice plan --data`), assessed on dep's declarations as of
// now: the same assessment the gateway makes (transfer.AssessCounts).
func storedLedger(l ledgerReader, e *law.Engine, dep *domicile.Deployment, now time.Time) notice.LedgerFunc {
	return func(ctx context.Context, src domicile.Jurisdiction) (*figures.Outlook, error) {
		year, _ := transfer.Day(src, now)
		counts, err := l.Breakdown(ctx, dep.LegalEntity(), year)
		if err != nil {
			return nil, err
		}
		return outlookOf(transfer.AssessCounts(e, dep, src, now, counts))
	}
}

// outlookOf turns a live assessment into a plan's outlook; a source the
// law engine has no regime for has none.
func outlookOf(a *transfer.Assessment, err error) (*figures.Outlook, error) {
	if domicile.ErrorCode(err) == domicile.EInvalid {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	o := a.Outlook()
	return &o, nil
}
