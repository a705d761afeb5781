package httpapi

import (
	"context"
	"domicile/client"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"domicile"
	"domicile/transfer"
)

// MaxImportBytes bounds an import CSV.
const MaxImportBytes = 1 << 30

// transferRoutes installs the transfer gateway's routes and metrics:
// mechanisms, consents, transfers, the ledger, evidence and the live
// assessment.
func (s *Server) transferRoutes(g *transfer.Gateway) {
	t := &transferHandlers{s: s, g: g}
	s.handleFunc("PUT /v1/mechanisms/{mid}", s.auth(t.putMechanism))
	s.handleFunc("GET /v1/mechanisms", s.auth(t.listMechanisms))
	s.handleFunc("GET /v1/mechanisms/{mid}", s.auth(t.getMechanism))
	s.handleFunc("PUT /v1/subjects/{id}/consents/{ckind}", s.auth(t.putConsent))
	s.handleFunc("GET /v1/subjects/{id}/consents", s.auth(t.getConsents))
	s.handleFunc("POST /v1/transfers", s.auth(t.transfer))
	s.handleFunc("POST /v1/transfers/import", s.auth(t.importCSV))
	s.handleFunc("GET /v1/transfers/ledger", s.auth(t.ledger))
	s.handleFunc("GET /v1/transfers/evidence", s.auth(t.evidence))
	s.handleFunc("GET /v1/transfers/assessment", s.auth(t.assessment))
	s.reg.MustRegister(&transferCollector{g: g})
}

type transferHandlers struct {
	s *Server
	g *transfer.Gateway
}

func (t *transferHandlers) putMechanism(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	var m transfer.Mechanism
	if err := decodeJSON(r, maxJSONBody, &m); err != nil {
		return err
	}
	if m.ID == "" {
		m.ID = r.PathValue("mid")
	}
	if m.ID != r.PathValue("mid") {
		return domicile.FieldErrorf("id", "differs from the path")
	}
	v, err := t.g.PutMechanism(r.Context(), a, m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (t *transferHandlers) listMechanisms(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	ms, err := t.g.Mechanisms(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, MechanismList{Mechanisms: ms})
	return nil
}

// MechanismList is the answer to GET /v1/mechanisms.
type MechanismList struct {
	Mechanisms []transfer.MechanismView `json:"mechanisms"`
}

func (t *transferHandlers) getMechanism(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	m, err := t.g.Mechanism(r.Context(), a, r.PathValue("mid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (t *transferHandlers) putConsent(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	// The gateway checks the kind against its own and the purposes'
	// consents, and names the known ones when it refuses.
	kind := domicile.ConsentKind(r.PathValue("ckind"))
	var req client.ConsentRequest
	if err := decodeJSON(r, maxJSONBody, &req); err != nil {
		return err
	}
	c, err := t.g.SetConsent(r.Context(), a, r.PathValue("id"), kind, req.TextVersion, req.Granted)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (t *transferHandlers) getConsents(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	cs, err := t.g.Consents(r.Context(), a, r.PathValue("id"))
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []domicile.Consent{}
	}
	writeJSON(w, http.StatusOK, client.ConsentList{Consents: cs})
	return nil
}

// TransferRequest is the body of POST /v1/transfers: a transfer request,
// and dry_run to decide without carrying it out.
type TransferRequest struct {
	transfer.Request
	DryRun bool `json:"dry_run,omitempty"`
}

// TransferProblem is the problem document of a refused transfer: the
// decision, with its reasons, rule ids and remedies, rides along.
type TransferProblem struct {
	client.Problem
	Decision *transfer.Decision `json:"decision"`
}

// Headers of an allowed transfer's bundle response.
const (
	// HeaderTransferDecision carries the decision, base64url JSON.
	HeaderTransferDecision = "Domicile-Transfer-Decision"
	HeaderTransferID       = "Domicile-Transfer"
	HeaderWarning          = "Domicile-Warning"
)

func (t *transferHandlers) transfer(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	var req TransferRequest
	if err := decodeJSON(r, 16<<20, &req); err != nil {
		return err
	}
	if req.DryRun {
		d, err := t.g.Decide(r.Context(), a, &req.Request)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, d)
		return nil
	}
	started := false
	begin := func(d *transfer.Decision) error {
		started = true
		b, _ := json.Marshal(d)
		h := w.Header()
		h.Set(HeaderTransferID, d.ID)
		h.Set(HeaderTransferDecision, base64.RawURLEncoding.EncodeToString(b))
		for _, wn := range d.Warnings {
			h.Add(HeaderWarning, wn.Message)
		}
		h.Set("Cache-Control", "no-store")
		if req.Plain {
			h.Set("Content-Type", "application/jsonl")
		} else {
			h.Set("Content-Type", "application/age")
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	_, err := t.g.Transfer(r.Context(), a, &req.Request, begin, w)
	if err == nil {
		return nil
	}
	if started {
		// The bundle is cut short; without its manifest line the recipient
		// knows it is incomplete.
		t.s.log.ErrorContext(r.Context(), "transfer bundle cut short", "err", err)
		return nil
	}
	return err
}

func (t *transferHandlers) importCSV(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	src := r.URL.Query().Get("source")
	if src == "" {
		src = "CN"
	}
	res, err := t.g.Import(r.Context(), a, domicile.Jurisdiction(src), http.MaxBytesReader(w, r.Body, MaxImportBytes))
	if err != nil {
		var ie *transfer.ImportError
		if errors.As(err, &ie) {
			err = &domicile.Error{Code: domicile.EInvalid, Field: "csv", Message: ie.Error()}
		}
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (t *transferHandlers) ledger(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	year := 0
	if v := r.URL.Query().Get("year"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2000 || n > 9999 {
			return domicile.FieldErrorf("year", "must be a year such as 2026")
		}
		year = n
	}
	v, err := t.g.Ledger(r.Context(), a, year)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func parseDay(field, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return t, domicile.FieldErrorf(field, "must be a date written YYYY-MM-DD")
	}
	return t, nil
}

func (t *transferHandlers) evidence(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	q := r.URL.Query()
	from, err := parseDay("from", q.Get("from"), time.Time{})
	if err != nil {
		return err
	}
	until, err := parseDay("until", q.Get("until"), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return err
	}
	format := q.Get("format")
	if format == "" {
		format = "json"
	}
	ct := "application/jsonl"
	if format == "csv" {
		ct = "text/csv; charset=utf-8"
	}
	lw := &lazyWriter{w: w, ct: ct}
	if err := t.g.Evidence(r.Context(), a, from, until, format, lw); err != nil {
		if !lw.started {
			return err
		}
		t.s.log.ErrorContext(r.Context(), "evidence export cut short", "err", err)
	}
	if !lw.started {
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

// lazyWriter defers the status line until the first byte, so an early
// error can still become a problem document.
type lazyWriter struct {
	w       http.ResponseWriter
	ct      string
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", l.ct)
		l.w.Header().Set("Cache-Control", "no-store")
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

func (t *transferHandlers) assessment(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	as, err := t.g.Assess(r.Context(), a, domicile.Jurisdiction(r.URL.Query().Get("source")))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, as)
	return nil
}

// transferCollector exports the ledger's counts, the headroom warnings
// and the gate's decisions as metrics. No label carries a subject.
type transferCollector struct{ g *transfer.Gateway }

var (
	descIndividuals = prometheus.NewDesc("domicile_transfer_individuals_ytd",
		"Distinct people whose data left this year, per source jurisdiction, class (pi, spi) and breakdown.",
		[]string{"entity", "source", "class", "dim", "value"}, nil)
	descWarning = prometheus.NewDesc("domicile_transfer_threshold_warning_percent",
		"Headroom warning: the percentage (80 or 90) of the next threshold a count has reached; absent below 80.",
		[]string{"fact", "threshold", "rule"}, nil)
	descDecisions = prometheus.NewDesc("domicile_transfer_decisions_total",
		"Transfer gate decisions since start, by outcome and the mechanism the law required.",
		[]string{"outcome", "mechanism"}, nil)
)

func (c *transferCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descIndividuals
	ch <- descWarning
	ch <- descDecisions
}

func (c *transferCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, warns, err := c.g.Snapshot(ctx)
	if err == nil {
		for _, n := range counts {
			ch <- prometheus.MustNewConstMetric(descIndividuals, prometheus.GaugeValue, float64(n.N), n.Entity, string(n.Source), string(n.Class), n.Dim, n.Value)
		}
		for _, wn := range warns {
			ch <- prometheus.MustNewConstMetric(descWarning, prometheus.GaugeValue, float64(wn.Percent), wn.Fact, strconv.FormatInt(wn.Threshold, 10), wn.Rule)
		}
	}
	for k, v := range c.g.Stats() {
		ch <- prometheus.MustNewConstMetric(descDecisions, prometheus.CounterValue, float64(v), k[0], k[1])
	}
}
