package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"domicile"
	"domicile/cell"
	"domicile/client"
	"domicile/migrate"
)

// The cell-to-cell routes of a migration between cell processes
// (doc/migration.md, "Separate cell processes"): the runner in the source
// cell's process reaches the target cell's process through them. Only a
// caller holding a cell token (domicile.RoleCell) is heard, and only for
// a subject that a running plan of the control store lists as moving from
// the caller's cell to this one. What crosses is a cell.Parcel: sealed
// rows, sealed blobs and data keys sealed with HPKE to the target's
// migration key.

// maxParcelBytes bounds a parcel's JSON body (sealed bytes grow by a
// third in base64).
const maxParcelBytes = 1 << 30

// CellMigrationKey is the answer of GET /v1/cells/{cell}/migration/key.
type CellMigrationKey struct {
	Cell string `json:"cell"`
	// Public is the cell's HPKE migration public key.
	Public []byte `json:"public"`
}

// CellParcelIn is the body of POST /v1/cells/{cell}/migration/in.
type CellParcelIn struct {
	Parcel *cell.Parcel `json:"parcel"`
	// Note is added to the migrate-in event (the notice the subject
	// received, the target operator).
	Note string `json:"note"`
}

// CellParcelResult is the answer of POST /v1/cells/{cell}/migration/in:
// the target's digest of what it holds, and its migrate-in event's log
// index (-1 when the copy was already there).
type CellParcelResult struct {
	Digest string `json:"digest"`
	Index  int64  `json:"index"`
}

// CellDiscard is the body of POST /v1/cells/{cell}/migration/discard.
type CellDiscard struct {
	Plan string              `json:"plan"`
	Ref  domicile.SubjectRef `json:"ref"`
}

// moveAuth decides which parcels a target cell accepts: it keeps, per
// plan, which subject moves from which cell to which (a plan's subjects
// never change), read again from the control store when a subject is not
// found in it.
type moveAuth struct {
	store domicile.MigrationStore
	mu    sync.Mutex
	plans map[string]map[domicile.SubjectRef][2]string
}

// allow returns nil if actor a speaks for cell from, plan is running, and
// it moves subject ref from that cell to cell to.
func (m *moveAuth) allow(ctx context.Context, a domicile.Actor, plan string, ref domicile.SubjectRef, from, to string) error {
	if a.Role != domicile.RoleCell || a.Subject == "" {
		return domicile.Errorf(domicile.EForbidden, "the cell-to-cell migration routes are for cell tokens")
	}
	if from != "" && from != a.Subject {
		return domicile.Errorf(domicile.EForbidden, "cell %s may not send a parcel from cell %s", a.Subject, truncate(from, 64))
	}
	if !migrate.ValidPlanID(plan) {
		return domicile.FieldErrorf("plan", "a migration plan id is m- and 16 hex digits")
	}
	mg, err := m.store.Migration(ctx, plan)
	if errors.Is(err, domicile.ErrNotFound) {
		return domicile.Errorf(domicile.EForbidden, "no migration plan %s", plan)
	}
	if err != nil {
		return err
	}
	if mg.State != migrate.StateRunning {
		return domicile.Errorf(domicile.EForbidden, "migration %s is %s, not running", plan, mg.State)
	}
	m.mu.Lock()
	mv, ok := m.plans[plan][ref]
	m.mu.Unlock()
	if !ok {
		subjects := map[domicile.SubjectRef][2]string{}
		var after domicile.SubjectRef
		for {
			ss, err := m.store.MigrationSubjects(ctx, plan, after, 1000)
			if err != nil {
				return err
			}
			for _, s := range ss {
				subjects[s.Ref] = [2]string{s.From, s.To}
				after = s.Key
			}
			if len(ss) < 1000 {
				break
			}
		}
		m.mu.Lock()
		if m.plans == nil {
			m.plans = map[string]map[domicile.SubjectRef][2]string{}
		}
		m.plans[plan] = subjects
		m.mu.Unlock()
		mv, ok = subjects[ref]
	}
	if !ok || mv != [2]string{a.Subject, to} {
		return domicile.Errorf(domicile.EForbidden, "migration %s moves no such subject from cell %s to cell %s", plan, a.Subject, truncate(to, 64))
	}
	return nil
}

// cellMigrationRoutes installs the target side of a move between cell
// processes.
func (s *Server) cellMigrationRoutes(store domicile.MigrationStore) {
	ma := &moveAuth{store: store}
	s.cellSizesRoute()
	target := func(r *http.Request, a domicile.Actor) (*cell.Cell, error) {
		if a.Role != domicile.RoleCell {
			return nil, domicile.Errorf(domicile.EForbidden, "the cell-to-cell migration routes are for cell tokens")
		}
		id := r.PathValue("cell")
		c := s.router.CellByID(id)
		if c == nil {
			return nil, domicile.Errorf(domicile.ENotFound, "cell %s is not served by this process", truncate(id, 64))
		}
		return c, nil
	}
	s.handleFunc("GET /v1/cells/{cell}/migration/key", s.auth(func(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
		c, err := target(r, a)
		if err != nil {
			return err
		}
		pub, err := c.MigrationKey(r.Context())
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, CellMigrationKey{Cell: c.ID(), Public: pub})
		return nil
	}))
	s.handleFunc("POST /v1/cells/{cell}/migration/in", s.auth(func(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
		c, err := target(r, a)
		if err != nil {
			return err
		}
		var in CellParcelIn
		if err := decodeJSON(r, maxParcelBytes, &in); err != nil {
			return err
		}
		p := in.Parcel
		if p == nil {
			return domicile.FieldErrorf("parcel", "the parcel is required")
		}
		if p.To != c.ID() {
			return domicile.FieldErrorf("parcel", "the parcel is for cell %s, not %s", truncate(p.To, 64), c.ID())
		}
		if len(in.Note) > 1024 {
			return domicile.FieldErrorf("note", "at most 1024 bytes")
		}
		if err := ma.allow(r.Context(), a, p.Plan, p.Subject.Ref, p.From, c.ID()); err != nil {
			return err
		}
		d, idx, err := c.MigrateIn(r.Context(), p, in.Note)
		if errors.Is(err, cell.ErrStaleCopy) {
			return &domicile.Error{Code: domicile.EConflict, Field: "parcel", Message: "stale copy: " + err.Error()}
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, CellParcelResult{Digest: d, Index: idx})
		return nil
	}))
	s.handleFunc("POST /v1/cells/{cell}/migration/discard", s.auth(func(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
		c, err := target(r, a)
		if err != nil {
			return err
		}
		var in CellDiscard
		if err := decodeJSON(r, 4<<10, &in); err != nil {
			return err
		}
		if err := ma.allow(r.Context(), a, in.Plan, in.Ref, "", c.ID()); err != nil {
			return err
		}
		if err := c.Discard(r.Context(), in.Plan, in.Ref); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
}

// CellTarget is a migration's target cell served by another process,
// reached over its cell-to-cell routes with this cell's token: the
// migrate.Target of a runner in a cell process.
type CellTarget struct {
	// Cell is the target cell's id.
	Cell string
	// Client has the target process's url, the calling cell's token
	// (domicile.RoleCell) and the HTTP client (its TLS).
	Client client.Client
}

var _ migrate.Target = (*CellTarget)(nil)

func (t *CellTarget) path(what string) string {
	return "/v1/cells/" + seg(t.Cell) + "/migration/" + what
}

// MigrationKey returns the target's HPKE migration public key.
func (t *CellTarget) MigrationKey(ctx context.Context) ([]byte, error) {
	var out CellMigrationKey
	if _, err := t.Client.Call(ctx, "GET", t.path("key"), nil, &out); err != nil {
		return nil, fmt.Errorf("cell %s: migration key: %w", t.Cell, err)
	}
	return out.Public, nil
}

// MigrateIn sends parcel p to the target; a stale copy there is
// cell.ErrStaleCopy, as from a cell of this process.
func (t *CellTarget) MigrateIn(ctx context.Context, p *cell.Parcel, note string) (string, int64, error) {
	var out CellParcelResult
	_, err := t.Client.Call(ctx, "POST", t.path("in"), CellParcelIn{Parcel: p, Note: note}, &out)
	var pe *client.ProblemError
	if errors.As(err, &pe) && pe.Status == http.StatusConflict && pe.Field == "parcel" {
		return "", 0, fmt.Errorf("cell %s: %w (%s)", t.Cell, cell.ErrStaleCopy, pe.Detail)
	}
	if err != nil {
		return "", 0, fmt.Errorf("cell %s: migrate in: %w", t.Cell, err)
	}
	return out.Digest, out.Index, nil
}

// Discard asks the target to discard its copy of subject ref.
func (t *CellTarget) Discard(ctx context.Context, plan string, ref domicile.SubjectRef) error {
	if _, err := t.Client.Call(ctx, "POST", t.path("discard"), CellDiscard{Plan: plan, Ref: ref}, nil); err != nil {
		return fmt.Errorf("cell %s: discard: %w", t.Cell, err)
	}
	return nil
}
