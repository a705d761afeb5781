package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"domicile"
	"domicile/migrate"
)

// A migration through the router of cell processes (doc/migration.md,
// "Separate cell processes"): the router plans from the control store
// and from each cell's sizes of its subjects (POST
// /v1/cells/{cell}/migration/sizes, admin tokens), forwards a run to the
// process of each source cell (POST /v1/migrations/{pid}/run there, with
// the caller's credential), and serves status and report from the
// control store.

// maxSizesRefs bounds the references of one sizes request.
const maxSizesRefs = 1000

// CellSizesRequest is the body of POST /v1/cells/{cell}/migration/sizes.
type CellSizesRequest struct {
	Refs []domicile.SubjectRef `json:"refs"`
}

// SubjectSize is one subject's part of a migration plan, as its cell
// counts it: its jurisdiction and its records, objects and sealed bytes.
// Found is false for a subject the cell does not hold (erased).
type SubjectSize struct {
	Ref          domicile.SubjectRef   `json:"ref"`
	Found        bool                  `json:"found"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction,omitempty"`
	Records      int                   `json:"records"`
	Objects      int                   `json:"objects"`
	Bytes        int64                 `json:"bytes"`
}

// CellSizes is the answer of POST /v1/cells/{cell}/migration/sizes, in
// the order of the request's references.
type CellSizes struct {
	Cell     string        `json:"cell"`
	Subjects []SubjectSize `json:"subjects"`
}

// cellSizesRoute installs POST /v1/cells/{cell}/migration/sizes.
func (s *Server) cellSizesRoute() {
	s.handleFunc("POST /v1/cells/{cell}/migration/sizes", s.auth(func(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
		if err := requireRole(a, "migration plans", domicile.RoleAdmin); err != nil {
			return err
		}
		c, err := s.servedCell(r)
		if err != nil {
			return err
		}
		var in CellSizesRequest
		if err := decodeJSON(r, 1<<20, &in); err != nil {
			return err
		}
		if len(in.Refs) > maxSizesRefs {
			return domicile.FieldErrorf("refs", "at most %d references", maxSizesRefs)
		}
		out := CellSizes{Cell: c.ID(), Subjects: make([]SubjectSize, 0, len(in.Refs))}
		for _, ref := range in.Refs {
			sz, err := SizeOf(r.Context(), c, ref)
			if err != nil {
				return err
			}
			out.Subjects = append(out.Subjects, sz)
		}
		setCell(w, c.ID())
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, out)
		return nil
	}))
}

// SizeOf is one subject's size as its cell counts it for a plan: the
// one definition the embedded planner and the cell route share.
func SizeOf(ctx context.Context, c interface {
	SubjectRow(context.Context, domicile.SubjectRef) (*domicile.StoredSubject, error)
	Sizes(context.Context, domicile.SubjectRef) (int, int, int64, error)
}, ref domicile.SubjectRef) (SubjectSize, error) {
	row, err := c.SubjectRow(ctx, ref)
	if errors.Is(err, domicile.ErrNotFound) {
		return SubjectSize{Ref: ref}, nil
	}
	if err != nil {
		return SubjectSize{}, err
	}
	nr, no, nb, err := c.Sizes(ctx, ref)
	if err != nil {
		return SubjectSize{}, err
	}
	return SubjectSize{Ref: ref, Found: true, Jurisdiction: row.Jurisdiction, Records: nr, Objects: no, Bytes: nb}, nil
}

// CellSizes asks a cell process for the sizes of its subjects refs
// (at most 1000), with the caller's credential.
func (p *Proxy) CellSizes(ctx context.Context, cell string, refs []domicile.SubjectRef) ([]SubjectSize, error) {
	body, err := json.Marshal(CellSizesRequest{Refs: refs})
	if err != nil {
		return nil, err
	}
	var out CellSizes
	if err := p.askCell(ctx, http.MethodPost, cell, "/v1/cells/"+url.PathEscape(cell)+"/migration/sizes", bytes.NewReader(body), &out); err != nil {
		return nil, err
	}
	if len(out.Subjects) != len(refs) {
		return nil, domicile.Errorf(domicile.EUnavailable, "cell %s answered %d sizes for %d subjects", cell, len(out.Subjects), len(refs))
	}
	return out.Subjects, nil
}

// StartMigration forwards a run of plan to the process of each source
// cell of the plan, with the caller's credential: each runs the moves of
// its own subjects (migrate.Config.Local).
func (p *Proxy) StartMigration(ctx context.Context, plan *migrate.Plan, in MigrationRunRequest) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, m := range plan.Moves {
		if seen[m.From] {
			continue
		}
		seen[m.From] = true
		if err := p.askCell(ctx, http.MethodPost, m.From, "/v1/migrations/"+url.PathEscape(plan.ID)+"/run", bytes.NewReader(body), nil); err != nil {
			return err
		}
	}
	return nil
}
