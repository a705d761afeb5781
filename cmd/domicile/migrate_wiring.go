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
	"domicile/httpapi"
	"domicile/migrate"
	"domicile/notice"
	"domicile/transfer"
)

// migrations is the migration part of a serving runtime: the runner and
// the key that signs its reports.
type migrations struct {
	runner *migrate.Runner
	// verifier is the signed-note verifier key of the reports.
	verifier string
}

// migrationKey returns the signer and the verifier key of the migration
// reports, kept with the control store (every process of a deployment
// reads the same file: the router publishes the key, the source cells'
// processes sign).
func migrationKey(rt *runtime) (note.Signer, string, error) {
	name := logOrigin(rt.dep, "migrations")
	skey, vkey, err := keyFile(filepath.Join(rt.controlDir, "control", "migration.key"), func() (string, string, error) {
		return checkpoint.GenerateKey(rand.Reader, name)
	})
	if err != nil {
		return nil, "", fmt.Errorf("migration report key: %w", err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("migration report key: %w", err)
	}
	return signer, vkey, nil
}

// startMigrations builds the migration runner of rt (whose logs are lg),
// resumes the runs a restart interrupted, and stops them when rt
// closes. With remote (a cell process), the runner moves only the
// subjects of the cells rt serves, and reaches the other cells through
// remote.
func startMigrations(ctx context.Context, rt *runtime, lg *logs, remote *remoteCells) (*migrations, error) {
	signer, vkey, err := migrationKey(rt)
	if err != nil {
		return nil, err
	}
	cm := rt.comm
	ms, ok := rt.control.(domicile.MigrationStore)
	if !ok {
		return nil, fmt.Errorf("the control store %T keeps no migrations", rt.control)
	}
	var target func(id string) migrate.Target
	if remote != nil {
		target = func(id string) migrate.Target {
			if c := rt.router.CellByID(id); c != nil {
				return c
			}
			return remote.target(id)
		}
	}
	r := migrate.New(migrate.Config{Store: ms, Signer: signer, Now: rt.now, Logger: rt.log, Local: remote != nil, Hooks: migrate.Hooks{
		Cell:       rt.router.CellByID,
		Target:     target,
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
			fields, cats, err := subjectFields(ctx, rt, c, s.Plan, s.Ref)
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
			if l == nil && remote != nil {
				return remote.checkpoint(ctx, cellID)
			}
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

// maxSizesPage is how many subjects a plan asks a cell's sizes of at
// once (the cell route's bound).
const maxSizesPage = 1000

// subjectFields returns the fields of a subject's records per kind and
// their categories, for the gate. The cell lists them on its access path
// (cell.MigrationFields), as the migration's system actor.
func subjectFields(ctx context.Context, rt *runtime, c *cell.Cell, plan string, ref domicile.SubjectRef) (map[string][]string, map[string]domicile.Category, error) {
	fields, err := c.MigrationFields(ctx, plan, ref)
	if err != nil {
		return nil, nil, err
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

// planSources are where a migration plan reads the subjects: the
// notices' subjects per cell (the change plan), and each cell's sizes of
// the subjects the directory places in it (httpapi.SizeOf, asked of the
// cell's process by a router).
type planSources struct {
	subjects notice.Subjects
	sizes    func(ctx context.Context, cell string, refs []domicile.SubjectRef) ([]httpapi.SubjectSize, error)
}

// servedSources are the plan's sources of a process that serves every
// cell (the embedded runtime).
func servedSources(rt *runtime, a domicile.Actor) planSources {
	return planSources{subjects: servedSubjects(rt, a), sizes: func(ctx context.Context, cellID string, refs []domicile.SubjectRef) ([]httpapi.SubjectSize, error) {
		c := rt.router.CellByID(cellID)
		if c == nil {
			return nil, domicile.Errorf(domicile.EUnavailable, "cell %s is not served here", cellID)
		}
		out := make([]httpapi.SubjectSize, 0, len(refs))
		for _, ref := range refs {
			sz, err := httpapi.SizeOf(ctx, c, ref)
			if err != nil {
				return nil, err
			}
			out = append(out, sz)
		}
		return out, nil
	}}
}

// planMigration makes, stores and returns the migration plan from the
// deployment in force to the next one (name, data): the change plan
// (its notices) first, then every subject whose home cell is not the
// next deployment's default home for its jurisdiction.
func planMigration(ctx context.Context, rt *runtime, mg *migrations, src planSources, name string, data []byte) (*migrate.Plan, error) {
	next, err := deploy.Parse(data)
	if err != nil {
		return nil, &domicile.Error{Code: domicile.EInvalid, Field: "deployment", Message: fmt.Sprintf("deployment %s: %v", name, err)}
	}
	cur := rt.router.Deployment()
	np, err := planFor(ctx, rt, rt.comm, cur, next, name, data, true, src.subjects)
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
	for _, fc := range cur.Cells {
		var after domicile.SubjectRef
		for {
			hs, err := rt.control.(domicile.MigrationStore).HomesIn(ctx, fc.ID, after, maxSizesPage)
			if err != nil {
				return nil, err
			}
			refs := make([]domicile.SubjectRef, len(hs))
			for i, h := range hs {
				refs[i] = h.Home.Ref
			}
			var sizes []httpapi.SubjectSize
			if len(refs) > 0 {
				if sizes, err = src.sizes(ctx, fc.ID, refs); err != nil {
					return nil, err
				}
			}
			for i, h := range hs {
				after = h.Key
				sz := sizes[i]
				if !sz.Found {
					continue
				}
				cells := next.PermittedCells(sz.Jurisdiction)
				if len(cells) == 0 {
					return nil, domicile.Errorf(domicile.EResidency, "refused: the next deployment places no cell for subjects of %s, and %s holds some", sz.Jurisdiction, fc.ID)
				}
				to := cells[0]
				if to == fc.ID {
					continue
				}
				tc := next.Cell(to)
				if tc == nil {
					return nil, domicile.Errorf(domicile.EInvalid, "the next deployment's policy names cell %s, which it does not declare", to)
				}
				k := [3]string{string(sz.Jurisdiction), fc.ID, to}
				m := moves[k]
				if m == nil {
					m = &migrate.Move{Jurisdiction: sz.Jurisdiction, From: fc.ID, To: to, FromJurisdiction: fc.Jurisdiction, ToJurisdiction: tc.Jurisdiction,
						FromOperator: fc.Operator, ToOperator: tc.Operator, CrossBorder: fc.Jurisdiction != tc.Jurisdiction}
					moves[k] = m
				}
				m.Subjects++
				m.Records += sz.Records
				m.Objects += sz.Objects
				m.Bytes += sz.Bytes
				subjects = append(subjects, domicile.MigrationSubject{Plan: p.ID, Key: h.Key, Ref: h.Home.Ref, From: fc.ID, To: to,
					Jurisdiction: sz.Jurisdiction, State: domicile.MovePlanned, OutIndex: -1, InIndex: -1, Updated: now})
			}
			if len(hs) < maxSizesPage {
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
