package httpapi

import (
	"encoding/json"
	"io"
	"net/http"

	"domicile"
	"domicile/rights"
)

// rightsRoutes installs the routes of individuals' rights requests:
// filing, listing, reading and moving on requests, the copy bundle, and
// erasure receipts.
func (s *Server) rightsRoutes(svc *rights.Service) {
	h := &rightsHandlers{s: s, svc: svc}
	s.handleFunc("POST /v1/subjects/{id}/requests", s.auth(h.create))
	s.handleFunc("GET /v1/subjects/{id}/requests", s.auth(h.list))
	s.handleFunc("GET /v1/subjects/{id}/requests/{rid}", s.auth(h.get))
	s.handleFunc("PATCH /v1/subjects/{id}/requests/{rid}", s.auth(h.update))
	s.handleFunc("GET /v1/subjects/{id}/requests/{rid}/bundle", s.auth(h.bundle))
	s.handleFunc("GET /v1/receipts/{rcpid}", s.public(h.receipt))
}

type rightsHandlers struct {
	s   *Server
	svc *rights.Service
}

// RequestPage is a page of a subject's rights requests.
type RequestPage struct {
	Requests []rights.Request `json:"requests"`
	// Next is the cursor of the next page (the last id), empty at the end.
	Next string `json:"next,omitempty"`
}

func (h *rightsHandlers) create(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	lang, err := docLang(r)
	if err != nil {
		return err
	}
	var in rights.Input
	if err := decodeJSON(r, maxJSONBody, &in); err != nil {
		return err
	}
	req, err := h.svc.Create(r.Context(), a, r.PathValue("id"), in, lang)
	if err != nil {
		return err
	}
	if req.Kind == rights.Deletion && req.Result != nil && req.Result.Receipt != nil {
		// The erasure revoked the subject's tokens: drop every cached
		// token so that none of them is honoured again.
		h.s.tokens.drop()
		setCell(w, req.Result.Receipt.Cell)
	}
	w.Header().Set("Location", "/v1/subjects/"+pathEscape(r.PathValue("id"))+"/requests/"+req.ID)
	w.Header().Set("Content-Language", string(lang))
	writeJSON(w, http.StatusCreated, req)
	return nil
}

func (h *rightsHandlers) list(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	limit, cur, err := listParams(r)
	if err != nil {
		return err
	}
	after := ""
	if cur != nil {
		if err := json.Unmarshal(cur, &after); err != nil {
			return domicile.FieldErrorf("cursor", "is not a cursor this server gave")
		}
	}
	reqs, err := h.svc.List(r.Context(), a, r.PathValue("id"), after, limit)
	if err != nil {
		return err
	}
	page := RequestPage{Requests: reqs}
	if len(reqs) == limit {
		page.Next = encodeCursor(reqs[len(reqs)-1].ID)
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func (h *rightsHandlers) get(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	req, err := h.svc.Get(r.Context(), a, r.PathValue("id"), r.PathValue("rid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

func (h *rightsHandlers) update(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	var u rights.Update
	if err := decodeJSON(r, maxJSONBody, &u); err != nil {
		return err
	}
	req, err := h.svc.Update(r.Context(), a, r.PathValue("id"), r.PathValue("rid"), u)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, req)
	return nil
}

func (h *rightsHandlers) bundle(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	lang, err := docLang(r)
	if err != nil {
		return err
	}
	// Once the bundle has begun, a failure can only cut it short (its
	// manifest, last, is then missing): answer logs the cause.
	return h.svc.Bundle(r.Context(), a, r.PathValue("id"), r.PathValue("rid"), lang, func(info rights.BundleInfo) (io.Writer, error) {
		w.Header().Set("Content-Type", info.ContentType)
		w.Header().Set("Content-Disposition", `attachment; filename="`+info.Name+`"`)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return w, nil
	})
}

func (h *rightsHandlers) receipt(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("rcpid")
	rec, err := h.svc.Receipt(r.Context(), id)
	if err != nil {
		return err
	}
	setCell(w, rec.Cell)
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, rec)
	return nil
}
