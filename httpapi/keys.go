package httpapi

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"domicile"
	"domicile/cell"
)

// KeyStatus is a cell's key custody status: KEK versions, how many data
// keys each wraps, and the unwrapped-key cache.
type KeyStatus struct {
	Cell        string           `json:"cell"`
	Custody     string           `json:"custody"`
	KEK         string           `json:"kek"`
	Current     uint32           `json:"current_version"`
	Versions    []uint32         `json:"versions"`
	KeysByVer   map[uint32]int64 `json:"data_keys_by_version"`
	CacheSize   int              `json:"cache_size"`
	CacheHits   uint64           `json:"cache_hits"`
	CacheMisses uint64           `json:"cache_misses"`
	Retired     []uint32         `json:"retired,omitempty"`
}

func (s *Server) registerKeys() {
	s.handleFunc("GET /v1/cells/{cell}/keys", s.auth(s.keyStatus))
	s.handleFunc("POST /v1/cells/{cell}/keys/rotate", s.auth(s.keyRotate))
	s.handleFunc("POST /v1/cells/{cell}/keys/retire", s.auth(s.keyRetire))
	for _, c := range s.router.Cells() {
		kr := c.Custody()
		labels := prometheus.Labels{"cell": c.ID()}
		s.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "domicile_key_cache_size", Help: "Unwrapped data keys cached.", ConstLabels: labels},
				func() float64 { n, _, _ := kr.CacheStats(); return float64(n) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "domicile_key_cache_hits_total", Help: "Data-key cache hits.", ConstLabels: labels},
				func() float64 { _, h, _ := kr.CacheStats(); return float64(h) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "domicile_key_cache_misses_total", Help: "Data-key cache misses (each a KEK unwrap).", ConstLabels: labels},
				func() float64 { _, _, m := kr.CacheStats(); return float64(m) }),
		)
	}
}

func (s *Server) adminCell(r *http.Request, a domicile.Actor) (*cell.Cell, error) {
	if a.Role != domicile.RoleAdmin {
		return nil, domicile.Errorf(domicile.EForbidden, "key custody is managed by admin tokens")
	}
	c := s.router.CellByID(r.PathValue("cell"))
	if c == nil {
		return nil, domicile.Errorf(domicile.ENotFound, "no cell %q", truncate(r.PathValue("cell"), 32))
	}
	return c, nil
}

func (s *Server) status(r *http.Request, c *cell.Cell) (*KeyStatus, error) {
	kr := c.Custody()
	cur, all, err := kr.Versions(r.Context())
	if err != nil {
		return nil, err
	}
	counts, err := kr.Counts(r.Context())
	if err != nil {
		return nil, err
	}
	n, h, m := kr.CacheStats()
	return &KeyStatus{Cell: c.ID(), Custody: c.Config().Custody.Kind, KEK: kr.KEKID(), Current: cur, Versions: all, KeysByVer: counts, CacheSize: n, CacheHits: h, CacheMisses: m}, nil
}

func (s *Server) keyStatus(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	c, err := s.adminCell(r, a)
	if err != nil {
		return err
	}
	st, err := s.status(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// keyRotate introduces a new KEK version; new data keys are wrapped under
// it at once, and `domicile keys rewrap` moves the old ones.
func (s *Server) keyRotate(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	c, err := s.adminCell(r, a)
	if err != nil {
		return err
	}
	if _, err := c.Custody().Rotate(r.Context()); err != nil {
		return err
	}
	st, err := s.status(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// keyRetire retires every old KEK version that no data key uses.
func (s *Server) keyRetire(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	c, err := s.adminCell(r, a)
	if err != nil {
		return err
	}
	retired, err := c.Custody().RetireUnused(r.Context())
	if err != nil {
		return err
	}
	st, err := s.status(r, c)
	if err != nil {
		return err
	}
	st.Retired = retired
	writeJSON(w, http.StatusOK, st)
	return nil
}

// registerStoreMetrics exports each cell store's group-commit counters
// (domicile.CommitStats), which domicile bench reads to say how busy the
// single writer was and how long its commits took, and the engine memory
// of a store that reports it (domicile.MemoryStats).
func (s *Server) registerStoreMetrics() {
	for _, c := range s.router.Cells() {
		c := c
		if _, ok := c.MemoryStats(); ok {
			s.reg.MustRegister(newStoreMemory(c))
		}
		if _, ok := c.CommitStats(); !ok {
			continue
		}
		labels := prometheus.Labels{"cell": c.ID()}
		counter := func(name, help string, v func(domicile.CommitStats) float64) prometheus.Collector {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
				func() float64 { st, _ := c.CommitStats(); return v(st) })
		}
		s.reg.MustRegister(
			counter("domicile_store_commits_total", "Transactions (groups of batches) the cell store's writer committed.",
				func(c domicile.CommitStats) float64 { return float64(c.Groups) }),
			counter("domicile_store_committed_batches_total", "Batches (one per request that writes) those transactions carried.",
				func(c domicile.CommitStats) float64 { return float64(c.Batches) }),
			counter("domicile_store_writer_busy_seconds_total", "Time the writer spent in committed transactions, from begin to commit.",
				func(c domicile.CommitStats) float64 { return c.Busy.Seconds() }),
			counter("domicile_store_commit_seconds_total", "Time spent in the commits themselves (WAL write and fsync, or COMMIT).",
				func(c domicile.CommitStats) float64 { return c.Commit.Seconds() }),
		)
	}
}

// storeMemory exports a cell store's engine memory (domicile.MemoryStats),
// read once per scrape: Pebble's block cache and memtables live outside
// the Go heap, so the Go runtime's metrics do not show them.
type storeMemory struct {
	c                                     *cell.Cell
	bound, cache, capacity, mem, memCount *prometheus.Desc
}

func newStoreMemory(c *cell.Cell) *storeMemory {
	labels := prometheus.Labels{"cell": c.ID()}
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, labels) }
	return &storeMemory{c: c,
		bound:    d("domicile_store_memory_bound_bytes", "The configured bound on the cell store engine's block cache and memtables together."),
		cache:    d("domicile_store_block_cache_bytes", "Bytes the cell store's block cache holds (allocated outside the Go heap)."),
		capacity: d("domicile_store_block_cache_capacity_bytes", "The size of the cell store's block cache (Pebble counts its memtables in it)."),
		mem:      d("domicile_store_memtable_bytes", "Bytes the cell store's memtables hold allocated, flushed ones still read included (outside the Go heap)."),
		memCount: d("domicile_store_memtables", "The cell store's memtables, flushed ones still read included."),
	}
}

// Describe implements prometheus.Collector.
func (m *storeMemory) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.bound, m.cache, m.capacity, m.mem, m.memCount} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *storeMemory) Collect(ch chan<- prometheus.Metric) {
	st, ok := m.c.MemoryStats()
	if !ok {
		return
	}
	for _, v := range []struct {
		d *prometheus.Desc
		v int64
	}{{m.bound, st.Bound}, {m.cache, st.CacheBytes}, {m.capacity, st.CacheCapacity}, {m.mem, st.MemTableBytes}, {m.memCount, st.MemTables}} {
		ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, float64(v.v))
	}
}
