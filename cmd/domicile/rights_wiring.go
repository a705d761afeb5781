package main

import (
	"context"
	"time"

	"domicile"
	"domicile/cell"
	"domicile/rights"
	"domicile/tlog"
)

// rightsService is the rights-request service of a runtime: its router,
// its cells' running logs, its law engine and its transfer gateway.
func rightsService(rt *runtime, lg *logs) *rights.Service {
	cfg := rights.Config{Router: rt.router, Law: rt.law, Now: rt.now,
		Logs: func(c string) *tlog.Log { return lg.byCell[c] }}
	if rt.gateway != nil {
		cfg.Gate, cfg.Calendar, cfg.Transfers = rt.gateway, rt.gateway.Calendar(), gatewayTransfers{rt: rt, g: rt.gateway}
	}
	return rights.New(cfg)
}

// DescribeTransfer asks the gateway where a transfer went, for the
// receipts of erasures (cell.TransferDescriber).
func (g gateProxy) DescribeTransfer(ctx context.Context, id string, near time.Time) (string, domicile.Jurisdiction, bool, error) {
	if g.rt.gateway == nil {
		return "", "", false, nil
	}
	return g.rt.gateway.DescribeTransfer(ctx, id, near)
}

var _ cell.TransferDescriber = gateProxy{}
