package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"domicile"
	"domicile/migrate"
)

// MigrationRunRequest is the body of POST /v1/migrations/{pid}/run.
type MigrationRunRequest struct {
	// Retention is how long the source keeps its copy after the switch
	// (a Go duration, "0s" by default).
	Retention string `json:"retention,omitempty"`
	// Rate bounds subjects moved per second (0: no bound).
	Rate float64 `json:"rate,omitempty"`
}

// MigrationKeyView is the answer of GET /v1/migrations/key.
type MigrationKeyView struct {
	VerifierKey string `json:"verifier_key"`
}

// maxRetention bounds a migration's retention period.
const maxRetention = 366 * 24 * time.Hour

func (s *Server) migrationRoutes(cfg Config) {
	m := cfg.Migrations
	s.handleFunc("POST /v1/migrations", s.auth(func(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
		if err := requireRole(a, "migration plans", domicile.RoleAdmin); err != nil {
			return err
		}
		var in PlanRequest
		if err := decodeJSON(r, 1<<20, &in); err != nil {
			return err
		}
		if in.Deployment == "" {
			return domicile.FieldErrorf("deployment", "the next deployment file's text is required")
		}
		if in.Name == "" {
			in.Name = "deployment.yaml"
		}
		if cfg.MigrationPlanner == nil {
			return domicile.Errorf(domicile.EConflict, "migrations are planned by the deployment's router, not by a cell's process")
		}
		p, err := cfg.MigrationPlanner(r.Context(), a, in.Name, []byte(in.Deployment))
		if err != nil {
			return err
		}
		w.Header().Set("Location", "/v1/migrations/"+p.ID)
		writeJSON(w, http.StatusCreated, p)
		return nil
	}))
	s.handleFunc("GET /v1/migrations/key", s.public(func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, MigrationKeyView{VerifierKey: cfg.MigrationKey})
		return nil
	}))
	s.handleFunc("GET /v1/migrations/{pid}", s.auth(func(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
		if err := requireRole(a, "a migration's progress", domicile.RoleAdmin, domicile.RoleAuditor); err != nil {
			return err
		}
		st, err := m.Status(r.Context(), r.PathValue("pid"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, st)
		return nil
	}))
	s.handleFunc("POST /v1/migrations/{pid}/run", s.auth(func(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
		if err := requireRole(a, "running a migration", domicile.RoleAdmin); err != nil {
			return err
		}
		var in MigrationRunRequest
		if err := decodeJSON(r, 4<<10, &in); err != nil {
			return err
		}
		var opts migrate.Options
		if in.Retention != "" {
			d, err := time.ParseDuration(in.Retention)
			if err != nil || d < 0 || d > maxRetention {
				return domicile.FieldErrorf("retention", "a duration from 0s to 8784h, such as 720h")
			}
			opts.Retention = d
		}
		if in.Rate < 0 || in.Rate > 1e6 {
			return domicile.FieldErrorf("rate", "subjects per second, from 0 (no bound) to 1000000")
		}
		opts.Rate = in.Rate
		start := m.Start
		if cfg.MigrationStart != nil {
			start = func(ctx context.Context, id string, opts migrate.Options) error {
				return cfg.MigrationStart(ctx, id, in, opts)
			}
		}
		if err := start(r.Context(), r.PathValue("pid"), opts); err != nil {
			return err
		}
		st, err := m.Status(r.Context(), r.PathValue("pid"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, st)
		return nil
	}))
	s.handleFunc("GET /v1/migrations/{pid}/report", s.auth(func(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
		if err := requireRole(a, "a migration's report", domicile.RoleAdmin, domicile.RoleAuditor); err != nil {
			return err
		}
		b, err := m.SignedReport(r.Context(), r.PathValue("pid"))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(b)
		return nil
	}))
	s.reg.MustRegister(&migrationCollector{m: m})
}

// migrationCollector exports each migration's progress: subjects per
// state, and sealed bytes moved. It names plans, never subjects.
type migrationCollector struct{ m *migrate.Runner }

var (
	migrationSubjectsDesc = prometheus.NewDesc("domicile_migration_subjects", "Subjects of a migration plan by state (planned, copied, switched, shredded, gone).", []string{"plan", "state"}, nil)
	migrationBytesDesc    = prometheus.NewDesc("domicile_migration_bytes", "Sealed bytes of the subjects a migration has moved.", []string{"plan"}, nil)
	migrationRateDesc     = prometheus.NewDesc("domicile_migration_subjects_per_second", "Subjects moved per second since the run started.", []string{"plan"}, nil)
)

func (c *migrationCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- migrationSubjectsDesc
	ch <- migrationBytesDesc
	ch <- migrationRateDesc
}

func (c *migrationCollector) Collect(ch chan<- prometheus.Metric) {
	ctx := contextTODO()
	ms, err := c.m.List(ctx)
	if err != nil {
		return
	}
	for _, mg := range ms {
		st, err := c.m.Status(ctx, mg.ID)
		if err != nil {
			continue
		}
		for _, state := range []string{domicile.MovePlanned, domicile.MoveCopied, domicile.MoveSwitched, domicile.MoveShredded, domicile.MoveGone} {
			ch <- prometheus.MustNewConstMetric(migrationSubjectsDesc, prometheus.GaugeValue, float64(st.States[state]), mg.ID, state)
		}
		ch <- prometheus.MustNewConstMetric(migrationBytesDesc, prometheus.GaugeValue, float64(st.Bytes), mg.ID)
		ch <- prometheus.MustNewConstMetric(migrationRateDesc, prometheus.GaugeValue, st.Rate, mg.ID)
	}
}
