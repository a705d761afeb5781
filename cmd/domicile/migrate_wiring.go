package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/mod/sumdb/note"

	"domicile"
	"domicile/cell"
	"domicile/checkpoint"
	"domicile/deploy"
	"domicile/migrate"
	"domicile/notice"
	"domicile/sqlite/commstore"
	"domicile/transfer"
)

// migrations is the migration part of a serving runtime: the runner and
// the key that signs its reports.
type migrations struct {
	runner *migrate.Runner
	// verifier is the signed-note verifier key of the reports.
	verifier string
}

// startMigrations builds the migration runner of rt (whose logs are lg),
// resumes the runs a restart interrupted, and stops them when rt
// closes. The reports' signing key is kept with the control store.
func startMigrations(ctx context.Context, rt *runtime, lg *logs) (*migrations, error) {
	name := logOrigin(rt.dep, "migrations")
	skey, vkey, err := keyFile(filepath.Join(rt.controlDir, "control", "migration.key"), func() (string, string, error) {
		return checkpoint.GenerateKey(rand.Reader, name)
	})
	if err != nil {
		return nil, fmt.Errorf("migration report key: %w", err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("migration report key: %w", err)
	}
	cm := rt.comm
	r := migrate.New(migrate.Config{Store: rt.control, Signer: signer, Now: rt.now, Logger: rt.log, Hooks: migrate.Hooks{
		Cell:       rt.router.CellByID,
		Deployment: rt.router.Deployment,
		Moved:      rt.router.Moved,
		Notices: func(ctx context.Context, plan string) (int, time.Time, error) {
			sts, err := cm.notices.Notices(ctx, plan)
			if err != nil {
				return 0, time.Time{}, err
			}
			pending, last := 0, time.Time{}
			for _, s := range sts {
				if s.Delivered == nil {
					pending++
				} else if s.Delivered.After(last) {
					last = *s.Delivered
				}
			}
			return pending, last, nil
		},
		Notice: func(ctx context.Context, plan string, ref domicile.SubjectRef) (string, time.Time, bool) {
			sts, err := cm.notices.SubjectNotices(ctx, ref.String())
			if err != nil {
				return "", time.Time{}, false
			}
			for _, s := range sts {
				if s.Notice.Plan == plan && s.Delivered != nil {
					return s.Notice.ID, *s.Delivered, true
				}
			}
			return "", time.Time{}, false
		},
		Transfer: func(ctx context.Context, c *cell.Cell, s domicile.MigrationSubject, m migrate.Move) (string, error) {
			if rt.gateway == nil {
				return "", domicile.Errorf(domicile.EForbidden, "this deployment runs no transfer gate")
			}
			fields, cats, err := subjectFields(ctx, rt, c, s.Ref)
			if err != nil {
				return "", err
			}
			d, err := rt.gateway.Migration(ctx, s.Plan, c, s.Ref, s.Key, m.ToJurisdiction, m.ToOperator, fields, cats)
			var refused *transfer.RefusedError
			if errors.As(err, &refused) {
				return "", domicile.Errorf(domicile.EForbidden, "%v", err)
			}
			if err != nil {
				return "", err
			}
			return d.ID, nil
		},
		Checkpoint: func(ctx context.Context, cellID string) (migrate.LogRef, error) {
			l := lg.byCell[cellID]
			if l == nil {
				return migrate.LogRef{}, fmt.Errorf("cell %s has no log here", cellID)
			}
			h, err := l.Publish(ctx)
			if err != nil {
				return migrate.LogRef{}, err
			}
			return migrate.LogRef{URL: "/log/" + cellID + "/", VerifierKey: l.VerifierKey(), Checkpoint: string(h.Signed), Size: h.Size}, nil
		},
	}})
	rt.closers = append([]func() error{func() error { r.Close(); return nil }}, rt.closers...)
	if err := r.Resume(ctx); err != nil {
		return nil, fmt.Errorf("resume migrations: %w", err)
	}
	return &migrations{runner: r, verifier: vkey}, nil
}

// subjectFields returns the fields of a subject's records per kind (and
// its files as domicile.ObjectKind) and their categories, for the gate.
func subjectFields(ctx context.Context, rt *runtime, c *cell.Cell, ref domicile.SubjectRef) (map[string][]string, map[string]domicile.Category, error) {
	subs, err := cellSubjectInfo(ctx, rt, c.ID())
	if err != nil {
		return nil, nil, err
	}
	fields := map[string][]string{}
	for _, s := range subs {
		if s.Ref == ref.String() {
			fields = s.Fields
		}
	}
	cats := map[string]domicile.Category{}
	dep := rt.router.Deployment()
	for kind, fs := range fields {
		k := dep.Kind(kind)
		for _, f := range fs {
			cat := domicile.Personal
			if k != nil {
				if kc, ok := k.Fields[f]; ok {
					cat = kc
				}
			}
			cats[kind+"."+f] = cat
		}
	}
	return fields, cats, nil
}

// planMigration makes, stores and returns the migration plan from the
// deployment in force to the next one (name, data): the change plan
// (its notices) first, then every subject whose home cell is not the
// next deployment's default home for its jurisdiction.
func planMigration(ctx context.Context, rt *runtime, mg *migrations, name string, data []byte) (*migrate.Plan, error) {
	next, err := deploy.Parse(data)
	if err != nil {
		return nil, &domicile.Error{Code: domicile.EInvalid, Field: "deployment", Message: fmt.Sprintf("deployment %s: %v", name, err)}
	}
	cur := rt.router.Deployment()
	np, err := planFor(ctx, rt, rt.comm, cur, next, name, data, true)
	if err != nil {
		return nil, err
	}
	ref := notice.Ref(name, data)
	p := &migrate.Plan{ID: "m-" + np.ID[2:], Created: rt.now().UTC(), To: name, ToSHA256: ref.SHA256,
		NoticePlan: np.ID, Notices: len(np.Notices), NoticeLead: next.Lead().String(), Moves: []migrate.Move{}}
	if len(p.ID) != 18 {
		return nil, fmt.Errorf("change plan id %q", np.ID)
	}
	moves := map[[3]string]*migrate.Move{}
	var subjects []domicile.MigrationSubject
	now := rt.now().UTC()
	for _, c := range rt.router.Cells() {
		var after domicile.SubjectRef
		for {
			hs, err := rt.control.HomesIn(ctx, c.ID(), after, 1000)
			if err != nil {
				return nil, err
			}
			for _, h := range hs {
				after = h.Key
				row, err := c.SubjectRow(ctx, h.Home.Ref)
				if errors.Is(err, domicile.ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, err
				}
				cells := next.PermittedCells(row.Jurisdiction)
				if len(cells) == 0 {
					return nil, domicile.Errorf(domicile.EResidency, "refused: the next deployment places no cell for subjects of %s, and %s holds some", row.Jurisdiction, c.ID())
				}
				to := cells[0]
				if to == c.ID() {
					continue
				}
				tc := next.Cell(to)
				if tc == nil {
					return nil, domicile.Errorf(domicile.EInvalid, "the next deployment's policy names cell %s, which it does not declare", to)
				}
				nr, no, nb, err := c.Sizes(ctx, h.Home.Ref)
				if err != nil {
					return nil, err
				}
				k := [3]string{string(row.Jurisdiction), c.ID(), to}
				m := moves[k]
				if m == nil {
					fc := c.Config()
					m = &migrate.Move{Jurisdiction: row.Jurisdiction, From: c.ID(), To: to, FromJurisdiction: fc.Jurisdiction, ToJurisdiction: tc.Jurisdiction,
						FromOperator: fc.Operator, ToOperator: tc.Operator, CrossBorder: fc.Jurisdiction != tc.Jurisdiction}
					moves[k] = m
				}
				m.Subjects++
				m.Records += nr
				m.Objects += no
				m.Bytes += nb
				subjects = append(subjects, domicile.MigrationSubject{Plan: p.ID, Key: h.Key, Ref: h.Home.Ref, From: c.ID(), To: to,
					Jurisdiction: row.Jurisdiction, State: domicile.MovePlanned, OutIndex: -1, InIndex: -1, Updated: now})
			}
			if len(hs) < 1000 {
				break
			}
		}
	}
	var keys [][3]string
	for k := range moves {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		if a[1] != b[1] {
			return a[1] < b[1]
		}
		return a[2] < b[2]
	})
	for _, k := range keys {
		m := moves[k]
		p.Moves = append(p.Moves, *m)
		p.Subjects += m.Subjects
		p.Records += m.Records
		p.Objects += m.Objects
		p.Bytes += m.Bytes
	}
	return mg.runner.Put(ctx, p, subjects)
}

// cellSubjectInfo lists a cell's subjects with their record fields, as a
// change plan counts them.
func cellSubjectInfo(ctx context.Context, rt *runtime, cellID string) ([]notice.SubjectInfo, error) {
	return commstore.CellSubjects(ctx, filepath.Join(rt.dir, cellID))
}
