package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"domicile"
	"domicile/cell"
	"domicile/merkle"
	"domicile/tlog"
)

// Logs gives the server each cell's running log.
type Logs map[string]*tlog.Log

// logInfo describes where cell's log can be verified from, or nil.
func (s *Server) logInfo(cell string) *LogInfo {
	l := s.cfg.Logs[cell]
	if l == nil {
		return nil
	}
	info := &LogInfo{Origin: l.Origin(), VerifierKey: l.VerifierKey(), URL: "/log/" + cell + "/"}
	if w := s.cfg.Witnesses[cell]; w != nil {
		info.WitnessKey = w.Verifier()
	}
	return info
}

// logRoutes installs the cells' log routes: the public tiles under
// /log/{cell}/, subjects' event trails, and consistency proofs for
// auditors.
func (s *Server) logRoutes() {
	s.handleFunc("GET /log/{cell}/checkpoint", s.public(s.logCheckpoint))
	s.handleFunc("GET /log/{cell}/tile/{path...}", s.public(s.logTile))
	s.handleFunc("GET /v1/subjects/{id}/events", s.auth(s.subjectEvents))
	s.handleFunc("GET /v1/cells/{cell}/consistency", s.auth(s.consistency))
}

// EventFilter decides, for a subject reading its own trail, which events
// it may see now: it hides what the law lets an authority keep from the
// subject until a deferral ends (the leaves stay in the public log; only
// their link to the subject is withheld).
type EventFilter func(ctx context.Context, ref domicile.SubjectRef) (visible func(committed []byte) bool, err error)

func (s *Server) cellLog(r *http.Request) (*tlog.Log, error) {
	l := s.cfg.Logs[r.PathValue("cell")]
	if l == nil {
		return nil, domicile.Errorf(domicile.ENotFound, "no log for cell %q", truncate(r.PathValue("cell"), 32))
	}
	return l, nil
}

func (s *Server) logCheckpoint(w http.ResponseWriter, r *http.Request) error {
	l, err := s.cellLog(r)
	if err != nil {
		return err
	}
	h, err := l.Cosigned()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(h.Signed)
	return nil
}

func (s *Server) logTile(w http.ResponseWriter, r *http.Request) error {
	l, err := s.cellLog(r)
	if err != nil {
		return err
	}
	t, err := merkle.ParseTilePath("tile/" + r.PathValue("path"))
	if err != nil {
		return domicile.Errorf(domicile.ENotFound, "not a tile path")
	}
	h, err := l.Cosigned()
	if err != nil {
		return err
	}
	// A tile is served only within the published tree: the leaves it
	// covers must all be below the checkpoint's size.
	span := int64(1) << (uint(max(t.L, 0)) * merkle.TileHeight)
	end := (t.N*merkle.TileWidth + int64(t.W)) * span
	if t.L == merkle.EntriesLevel {
		end = t.N*merkle.TileWidth + int64(t.W)
	}
	if end > h.Size {
		return domicile.Errorf(domicile.ENotFound, "tile beyond the latest checkpoint (size %d)", h.Size)
	}
	var data []byte
	if t.L == merkle.EntriesLevel {
		start := t.N * merkle.TileWidth
		leaves, err := s.logStore(r.PathValue("cell")).Leaves(r.Context(), start, start+int64(t.W))
		if err == nil {
			data, err = merkle.EncodeEntryBundle(leaves)
		}
		if err != nil {
			return err
		}
	} else {
		data, err = merkle.ReadTileData(t, l.HashReader(r.Context()))
		if err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	// Tiles never change: a partial tile is replaced by a wider one under
	// another path, so every tile path is immutable.
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(data)
	return nil
}

// logStore returns the public log of a cell, for entry bundles.
func (s *Server) logStore(id string) cell.PublicLog {
	if c := s.router.CellByID(id); c != nil {
		return c.PublicLog()
	}
	return nil
}

// EventItem is one event of a subject's trail, with what a verifier needs.
type EventItem struct {
	LeafIndex int64           `json:"leaf_index"`
	Salt      []byte          `json:"salt"`
	Committed string          `json:"committed"`
	Leaf      string          `json:"leaf"`
	Event     json.RawMessage `json:"event"`
	// Proof is the inclusion proof against Checkpoint, base64 hashes.
	Proof []string `json:"inclusion_proof"`
}

// EventPage is the answer of GET /v1/subjects/{id}/events.
type EventPage struct {
	Cell        string      `json:"cell"`
	Origin      string      `json:"origin"`
	VerifierKey string      `json:"verifier_key"`
	Checkpoint  string      `json:"checkpoint"`
	Size        int64       `json:"size"`
	Events      []EventItem `json:"events"`
	Next        string      `json:"next,omitempty"`
}

func (s *Server) subjectEvents(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	limit, cur, err := listParams(r)
	if err != nil {
		return err
	}
	after := int64(-1)
	if cur != nil {
		if after, err = strconv.ParseInt(string(cur), 10, 64); err != nil || after < -1 {
			return domicile.FieldErrorf("cursor", "is not a cursor this server gave")
		}
	}
	c, k, err := s.router.Locate(r.Context(), r.PathValue("id"))
	if domicile.ErrorCode(err) == domicile.ENotFound && a.Role != domicile.RoleAuditor && a.Subject != k.Ref.String() {
		// As for data: a refused actor learns nothing of who is registered.
		err = domicile.Errorf(domicile.EForbidden, "a subject's events are for that subject's token or an auditor")
	}
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	evs, err := c.SubjectEvents(r.Context(), a, k, after, limit)
	if err != nil {
		return err
	}
	l := s.cfg.Logs[c.ID()]
	if l == nil {
		return errors.New("no log for the subject's cell")
	}
	// The list's own event is committed; a checkpoint that covers every
	// event listed is signed now if needed.
	h, err := l.Latest(r.Context())
	if err != nil {
		return err
	}
	page := EventPage{Cell: c.ID(), Origin: l.Origin(), VerifierKey: l.VerifierKey(), Checkpoint: string(h.Signed), Size: h.Size, Events: []EventItem{}}
	visible := func([]byte) bool { return true }
	if a.Role == domicile.RoleSubject && s.cfg.EventFilter != nil {
		if visible, err = s.cfg.EventFilter(r.Context(), k.Ref); err != nil {
			return err
		}
	}
	for _, e := range evs {
		if e.Committed != nil && !visible(e.Committed) {
			continue
		}
		it := EventItem{LeafIndex: e.Index, Salt: e.Salt, Committed: string(e.Committed), Leaf: string(e.Leaf), Event: e.Committed}
		if e.Committed == nil {
			it.Event = json.RawMessage("null")
		}
		if e.Index < h.Size {
			proof, err := l.ProveInclusion(r.Context(), e.Index, h.Size)
			if err != nil {
				return err
			}
			for _, p := range proof {
				it.Proof = append(it.Proof, base64.StdEncoding.EncodeToString(p[:]))
			}
		}
		page.Events = append(page.Events, it)
	}
	if len(evs) == limit {
		page.Next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(evs[len(evs)-1].Index, 10)))
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (s *Server) consistency(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if a.Role != domicile.RoleAuditor {
		return domicile.Errorf(domicile.EForbidden, "consistency proofs are for auditor tokens")
	}
	l, err := s.cellLog(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	from, err1 := strconv.ParseInt(q.Get("from"), 10, 64)
	to, err2 := strconv.ParseInt(q.Get("to"), 10, 64)
	h, err := l.Latest(r.Context())
	if err != nil {
		return err
	}
	switch {
	case err1 != nil || from < 0:
		return domicile.FieldErrorf("from", "must be a tree size")
	case err2 != nil || to < from || to > h.Size:
		return domicile.FieldErrorf("to", "must be a tree size from %d to %d", from, h.Size)
	}
	proof, err := l.ProveConsistency(r.Context(), from, to)
	if err != nil {
		return err
	}
	out := struct {
		From       int64    `json:"from"`
		To         int64    `json:"to"`
		Proof      []string `json:"proof"`
		Checkpoint string   `json:"checkpoint"`
	}{From: from, To: to, Proof: []string{}, Checkpoint: string(h.Signed)}
	for _, p := range proof {
		out.Proof = append(out.Proof, base64.StdEncoding.EncodeToString(p[:]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
