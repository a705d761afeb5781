package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"domicile"
	"domicile/authority"
	"domicile/cell"
	"domicile/deploy"
	"domicile/httpapi"
	"domicile/notice"
	"domicile/pebblestore"
	"domicile/report"
	"domicile/sqlite/commstore"
)

// comm is the communication part of an opened runtime: the notice and
// authority request stores (their own database files under
// <data>/control/), the request desk and the notice sender.
type comm struct {
	notices *commstore.Notices
	reqs    *commstore.Authority
	desk    *authority.Desk
	sender  *notice.Sender
}

// reports is the communication area of the HTTP API for rt: statements,
// the transparency report, authority requests and change notices.
func reports(rt *runtime) *httpapi.Reports {
	cm := rt.comm
	tr := gatewayTransfers{rt: rt, g: rt.gateway}
	return &httpapi.Reports{
		Sources: &report.Sources{Router: rt.router, Notices: notice.Lines{Store: cm.notices}, Authority: cm.desk, Transfers: tr, Law: rt.law, Now: rt.now},
		Desk:    cm.desk, Notices: cm.notices, Sender: cm.sender, Now: rt.now,
		Plan: func(ctx context.Context, name string, data []byte) (*notice.Plan, error) {
			next, err := deploy.Parse(data)
			if err != nil {
				return nil, domicile.Errorf(domicile.EInvalid, "deployment %s: %v", name, err)
			}
			return planFor(ctx, rt, cm, rt.router.Deployment(), next, name, data, true)
		},
	}
}

// deferredFilter hides from a subject's own trail the events of an
// authority request whose notice the law still defers (its reads, and the
// commitment to the notice), as the data statement does.
func deferredFilter(desk *authority.Desk, now func() time.Time) httpapi.EventFilter {
	return func(ctx context.Context, ref domicile.SubjectRef) (func([]byte) bool, error) {
		lines, err := desk.SubjectLines(ctx, ref)
		if err != nil {
			return nil, err
		}
		hiddenRef, hiddenRes := map[string]bool{}, map[string]bool{}
		t := now()
		for _, l := range lines {
			if l.Deferred(t) {
				hiddenRef[l.Reference] = true
				hiddenRes["authority-notice/"+l.Request] = true
			}
		}
		if len(hiddenRef) == 0 {
			return func([]byte) bool { return true }, nil
		}
		return func(committed []byte) bool {
			var e domicile.Event
			if json.Unmarshal(committed, &e) != nil {
				return true
			}
			return !(e.Role == domicile.RoleAuthority && hiddenRef[e.Reference]) && !hiddenRes[e.Resource]
		}, nil
	}
}

// openComm opens the communication stores of rt; they close with it.
func openComm(ctx context.Context, rt *runtime) (*comm, error) {
	dir := filepath.Join(rt.controlDir, "control")
	ns, err := commstore.OpenNotices(ctx, dir)
	if err != nil {
		return nil, err
	}
	as, err := commstore.OpenAuthority(ctx, dir)
	if err != nil {
		ns.Close()
		return nil, err
	}
	secret, err := webhookSecret(filepath.Join(dir, "webhook.secret"))
	if err != nil {
		ns.Close()
		as.Close()
		return nil, err
	}
	cm := &comm{notices: ns, reqs: as, desk: authority.New(authority.Config{Store: as, Router: rt.router, Law: rt.law, Now: rt.now})}
	cm.sender = &notice.Sender{Store: ns, Secret: secret, Now: rt.now,
		AckURL: func(id string) string { return "/v1/notices/" + id + "/ack" },
		OnDelivered: func(ctx context.Context, st notice.State) error {
			c := rt.router.CellByID(st.Cell)
			ref, err := domicile.ParseSubjectRef(st.Notice.SubjectRef)
			if c == nil || err != nil {
				return fmt.Errorf("notice %s: no cell %s for its subject", st.Notice.ID, st.Cell)
			}
			_, err = c.Note(ctx, domicile.Actor{Role: domicile.RoleSystem}, cell.SubjectKey{Ref: ref}, domicile.ActNotice, "notice/"+st.Notice.ID, fmt.Sprintf("delivered attempts=%d", st.Attempts))
			return err
		}}
	rt.closers = append(rt.closers, func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cm.sender.Close(sctx)
		return errors.Join(ns.Close(), as.Close())
	})
	return cm, nil
}

// webhookSecret returns the hex secret that signs webhook payloads,
// creating it (mode 0600) on first use. The business's receiver verifies
// payloads with it.
func webhookSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		if err := writeFileSync(path, []byte(hex.EncodeToString(raw)+"\n"), 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	return []byte(strings.TrimSpace(string(b))), nil
}

// planFor makes and stores the plan from one deployment to the next,
// counting the subjects of the cells it touches in rt's data.
func planFor(ctx context.Context, rt *runtime, cm *comm, from, to *domicile.Deployment, name string, data []byte, transfers bool) (*notice.Plan, error) {
	cur, err := json.Marshal(struct {
		D *domicile.Deployment
		C []domicile.CellConfig
	}{from, from.Cells})
	if err != nil {
		return nil, err
	}
	p, err := notice.MakePlan(ctx, notice.PlanInput{From: from, To: to,
		FromRef: notice.Ref(from.Name+" (in force)", cur), ToRef: notice.Ref(name, data),
		Subjects: notice.SubjectsFunc(func(ctx context.Context, cellID string) ([]notice.SubjectInfo, error) {
			if err := rt.router.Serves(cellID); err != nil {
				// Counted without that cell, the plan would leave out its
				// subjects' notices.
				return nil, domicile.Errorf(domicile.ErrorCode(err), "a change plan counts the subjects of every cell it touches: %v", err)
			}
			return rt.cellSubjects(ctx, cellID)
		}),
		Law: rt.law, Now: rt.now(), TransfersWired: transfers, Ledger: planLedger(rt)})
	if err != nil {
		return nil, err
	}
	if err := cm.notices.PutPlan(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// onReload records, with its time, each change of a reload that keeps
// data in place (a cell's operator, location or key custody; not a
// declared transfer mechanism, which changes no cell): in the
// notice store, which subjects' statements read, and as an event in the
// changed cell's log. serve's reload calls it just before swapping the
// deployment in.
func onReload(rt *runtime, next *domicile.Deployment, at time.Time) {
	cm := rt.comm
	var lines []report.ChangeLine
	for _, c := range notice.Diff(rt.dep, next) {
		// A declared transfer mechanism changes no cell: the transfer
		// gateway's registry, not a reload, decides what may leave.
		if !c.KeepsData || c.Kind == report.ChangeMechanism {
			continue
		}
		if rt.shared && rt.router.CellByID(c.Cell) == nil {
			// Each cell process records its own cell's changes, once, in
			// the notice store they share.
			continue
		}
		lines = append(lines, report.ChangeLine{Time: at.UTC(), Cell: c.Cell, Field: c.Kind, Before: c.Before, After: c.After})
		if cl := rt.router.CellByID(c.Cell); cl != nil {
			if _, err := cl.NoteSystem(context.Background(), domicile.ActNotice, "deployment", "changed "+c.Kind); err != nil {
				rt.log.Error("reload: cannot log the change", slog.String("cell", c.Cell), slog.Any("err", err))
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	if err := cm.notices.PutApplied(context.Background(), lines); err != nil {
		rt.log.Error("reload: cannot record the change", slog.Any("err", err))
	}
}

// cellSubjects lists a served cell's subjects for a change plan: from the
// SQLite file, or from the open Pebble store (which its process holds
// locked).
func (rt *runtime) cellSubjects(ctx context.Context, cellID string) ([]notice.SubjectInfo, error) {
	dir := filepath.Join(rt.dir, cellID)
	for _, st := range rt.stores {
		if ps, ok := st.(*pebblestore.Store); ok && ps.Dir() == dir {
			return ps.CellSubjects(ctx)
		}
	}
	return commstore.CellSubjects(ctx, dir)
}
