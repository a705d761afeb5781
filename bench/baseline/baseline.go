// Package baseline is the raw baseline that domicile bench measures the
// service against: an HTTP server that does only HTTP, JSON and the same
// cell store as domicile (same durability, same group commit), and
// nothing else: no authentication, no residency policy, no sealing, no
// log events, no key custody.
//
// It serves the subset of domicile's routes that the load mixes use, with
// the same paths and the same JSON shapes, so that the same client code
// (httpapi.Client) drives both and the client's own cost is the same on
// both sides:
//
//	POST /v1/subjects                              {"id": ...}  → PutSubject
//	PUT  /v1/subjects/{id}/records/{kind}/{rid}    JSON body    → Record, then Commit(PutRecord)
//	GET  /v1/subjects/{id}/records/{kind}/{rid}                 → Record
//	PUT  /v1/subjects/{id}/objects/{name}          bytes        → blob + Commit(PutObject)
//	GET  /v1/subjects/{id}/objects/{name}                       → Object + blob
//	GET  /metrics                                               the store's commit counters
//
// A record write reads the current version and commits one batch with one
// PutRecord operation and no events, retrying if a concurrent write won;
// a record read is one Record call. Subjects are keyed by the SHA-256 of
// their id. Anything the Authorization or Domicile-* headers say is
// ignored.
package baseline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"domicile"
)

// maxRetries bounds retries of a record write that lost a race.
const maxRetries = 8

// MaxObjectBytes bounds an object's size, as the demo deployment does.
const MaxObjectBytes = 1 << 30

// Server is the baseline HTTP handler. It is safe for concurrent use.
type Server struct {
	store Store
	mux   *http.ServeMux
	now   func() time.Time
}

// Store is what the baseline reads and writes of a cell store: records,
// objects and their blobs, and commits.
type Store interface {
	domicile.Committer
	domicile.DataReader
}

// New returns a baseline server over store. now may be nil (time.Now).
func New(store Store, now func() time.Time) *Server {
	if now == nil {
		now = time.Now
	}
	s := &Server{store: store, mux: http.NewServeMux(), now: now}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	s.mux.HandleFunc("POST /v1/subjects", s.createSubject)
	s.mux.HandleFunc("PUT /v1/subjects/{id}/records/{kind}/{rid}", s.putRecord)
	s.mux.HandleFunc("GET /v1/subjects/{id}/records/{kind}/{rid}", s.getRecord)
	s.mux.HandleFunc("PUT /v1/subjects/{id}/objects/{name}", s.putObject)
	s.mux.HandleFunc("GET /v1/subjects/{id}/objects/{name}", s.getObject)
	s.mux.HandleFunc("GET /metrics", s.metrics)
	return s
}

// metrics writes the store's group-commit counters in Prometheus text
// format, under the names domicile serve uses, so that domicile bench
// reports both servers' writers alike. It is not on any measured path.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	st, ok := s.store.(domicile.CommitStatser)
	if !ok {
		http.NotFound(w, r)
		return
	}
	c := st.CommitStats()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, m := range []struct {
		name string
		v    float64
	}{
		{"domicile_store_commits_total", float64(c.Groups)},
		{"domicile_store_committed_batches_total", float64(c.Batches)},
		{"domicile_store_writer_busy_seconds_total", c.Busy.Seconds()},
		{"domicile_store_commit_seconds_total", c.Commit.Seconds()},
	} {
		fmt.Fprintf(w, "# TYPE %s counter\n%s{cell=\"baseline\"} %g\n", m.name, m.name, m.v)
	}
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Ref returns the store key of a subject id: its SHA-256.
func Ref(id string) domicile.SubjectRef { return sha256.Sum256([]byte(id)) }

type problem struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func fail(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	b, _ := json.Marshal(problem{Status: status, Code: code, Detail: detail})
	w.WriteHeader(status)
	w.Write(b)
}

func storeError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, domicile.ErrNotFound):
		fail(w, http.StatusNotFound, "not-found", "not found")
	case errors.Is(err, domicile.ErrVersionMismatch):
		fail(w, http.StatusConflict, "conflict", "changed concurrently")
	default:
		fail(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func (s *Server) createSubject(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID           string `json:"id"`
		Jurisdiction string `json:"jurisdiction"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req.ID == "" {
		fail(w, http.StatusBadRequest, "invalid", "want {\"id\": ...}")
		return
	}
	now := s.now().UTC()
	err := s.store.Commit(r.Context(), &domicile.Batch{Ops: []domicile.Op{&domicile.PutSubject{Subject: domicile.StoredSubject{
		Ref: Ref(req.ID), Jurisdiction: domicile.Jurisdiction(req.Jurisdiction), Created: now}}}})
	if err != nil {
		storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, domicile.Subject{ID: req.ID, Jurisdiction: domicile.Jurisdiction(req.Jurisdiction), Created: now})
}

func (s *Server) putRecord(w http.ResponseWriter, r *http.Request) {
	id, kind, rid := r.PathValue("id"), r.PathValue("kind"), r.PathValue("rid")
	body, err := io.ReadAll(io.LimitReader(r.Body, domicile.MaxRecordBytes+1))
	if err != nil || len(body) > domicile.MaxRecordBytes || !json.Valid(body) {
		fail(w, http.StatusBadRequest, "invalid", "want a JSON record of at most 1 MiB")
		return
	}
	ref := Ref(id)
	for try := 0; ; try++ {
		var cur int64
		if old, err := s.store.Record(r.Context(), ref, kind, rid); err == nil {
			cur = old.Version
		} else if !errors.Is(err, domicile.ErrNotFound) {
			storeError(w, err)
			return
		}
		now := s.now().UTC()
		err := s.store.Commit(r.Context(), &domicile.Batch{Ops: []domicile.Op{&domicile.PutRecord{
			Record: domicile.StoredRecord{Ref: ref, Kind: kind, ID: rid, Version: cur + 1, Body: body, Updated: now},
			Expect: cur,
		}}})
		if errors.Is(err, domicile.ErrVersionMismatch) && try < maxRetries {
			continue
		}
		if err != nil {
			storeError(w, err)
			return
		}
		status := http.StatusOK
		if cur == 0 {
			status = http.StatusCreated
		}
		w.Header().Set("ETag", fmt.Sprintf("\"v%d\"", cur+1))
		writeJSON(w, status, domicile.Record{Subject: id, Kind: kind, ID: rid, Version: cur + 1, Updated: now})
		return
	}
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request) {
	id, kind, rid := r.PathValue("id"), r.PathValue("kind"), r.PathValue("rid")
	st, err := s.store.Record(r.Context(), Ref(id), kind, rid)
	if err == nil && st.Body == nil {
		err = domicile.ErrNotFound
	}
	if err != nil {
		storeError(w, err)
		return
	}
	w.Header().Set("ETag", fmt.Sprintf("\"v%d\"", st.Version))
	writeJSON(w, http.StatusOK, domicile.Record{Subject: id, Kind: kind, ID: rid, Version: st.Version, Data: st.Body, Updated: st.Updated})
}

func (s *Server) putObject(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("name")
	ref := Ref(id)
	ct := r.Header.Get("Content-Type")
	var cur int64
	var oldBlob string
	if old, err := s.store.Object(r.Context(), ref, name); err == nil {
		cur, oldBlob = old.Version, old.Blob
	} else if !errors.Is(err, domicile.ErrNotFound) {
		storeError(w, err)
		return
	}
	bw, err := s.store.Blobs().Create(r.Context())
	if err != nil {
		storeError(w, err)
		return
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(bw, h), io.LimitReader(r.Body, MaxObjectBytes+1))
	if err == nil && n > MaxObjectBytes {
		err = errors.New("object too large")
	}
	if err != nil {
		bw.Abort()
		fail(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	key, err := bw.Commit()
	if err != nil {
		storeError(w, err)
		return
	}
	now := s.now().UTC()
	o := domicile.StoredObject{Ref: ref, Name: name, Version: cur + 1, ContentType: ct, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Blob: key, Updated: now}
	if err := s.store.Commit(r.Context(), &domicile.Batch{Ops: []domicile.Op{&domicile.PutObject{Object: o, Expect: cur}}}); err != nil {
		s.store.Blobs().Remove(r.Context(), key)
		storeError(w, err)
		return
	}
	if oldBlob != "" {
		s.store.Blobs().Remove(r.Context(), oldBlob)
	}
	status := http.StatusOK
	if cur == 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, domicile.Object{Subject: id, Name: name, Version: o.Version, ContentType: ct, Size: n, SHA256: o.SHA256, Updated: now})
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request) {
	st, err := s.store.Object(r.Context(), Ref(r.PathValue("id")), r.PathValue("name"))
	if err == nil && st.Blob == "" {
		err = domicile.ErrNotFound
	}
	if err != nil {
		storeError(w, err)
		return
	}
	br, err := s.store.Blobs().Open(r.Context(), st.Blob)
	if err != nil {
		storeError(w, err)
		return
	}
	defer br.Close()
	w.Header().Set("Content-Type", st.ContentType)
	w.Header().Set("Content-Length", strconv.FormatInt(br.Size(), 10))
	w.WriteHeader(http.StatusOK)
	io.Copy(w, io.NewSectionReader(br, 0, br.Size()))
}
