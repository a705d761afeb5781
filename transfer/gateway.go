package transfer

// The gateway: its configuration, the registry it caches, per-entity
// serialisation, and what it says of itself.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"domicile"
	"domicile/law"
	"domicile/residency"
)

// Config configures a Gateway.
type Config struct {
	Store  Store
	Engine *law.Engine
	Router *residency.Router
	// Calendar counts CN working days; nil means [CN].
	Calendar *Calendar
	Now      func() time.Time
	Rand     io.Reader
	Logger   *slog.Logger
	// Refresh, when positive, is how old the cached registry of
	// mechanisms may grow before it is read again from the store. Set it
	// when several processes share the store (cells that run as their own
	// processes): a mechanism registered, replaced or revoked through one
	// of them then governs the decisions of all within Refresh. Zero
	// reads the registry once, at New, which is right for one process.
	Refresh time.Duration
}

// Gateway decides and carries out transfers. It is safe for concurrent
// use; decisions of one legal entity are serialised.
type Gateway struct {
	cfg Config

	locks sync.Map // entity -> *sync.Mutex

	mu sync.RWMutex
	// mechs is the registry, cached, and loaded when it was read from
	// the store; guarded by mu.
	mechs  []Mechanism
	loaded time.Time

	statsMu sync.Mutex
	// decisions counts decisions by outcome and law mechanism; guarded by statsMu.
	decisions map[[2]string]int64
}

// MaxSubjects bounds the subjects of one transfer request.
const MaxSubjects = 100_000

// New returns a gateway over cfg.Store, loading the registry.
func New(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Calendar == nil {
		cfg.Calendar = CN()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ms, err := loadMechanisms(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	return &Gateway{cfg: cfg, mechs: ms, loaded: cfg.Now(), decisions: map[[2]string]int64{}}, nil
}

// loadMechanisms reads the registry from st.
func loadMechanisms(ctx context.Context, st Store) ([]Mechanism, error) {
	bodies, err := st.Mechanisms(ctx)
	if err != nil {
		return nil, err
	}
	ms := make([]Mechanism, len(bodies))
	for i, b := range bodies {
		if err := json.Unmarshal(b, &ms[i]); err != nil {
			return nil, fmt.Errorf("transfer: stored mechanism: %v", err)
		}
	}
	return ms, nil
}

// refresh reads the registry again from the store if it is older than
// Config.Refresh. A store that cannot be read fails the caller: a
// decision is not made on a registry that may be stale.
func (g *Gateway) refresh(ctx context.Context) error {
	if g.cfg.Refresh <= 0 {
		return nil
	}
	now := g.cfg.Now()
	g.mu.RLock()
	fresh := now.Sub(g.loaded) < g.cfg.Refresh && !now.Before(g.loaded)
	g.mu.RUnlock()
	if fresh {
		return nil
	}
	ms, err := loadMechanisms(ctx, g.cfg.Store)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.mechs, g.loaded = ms, now
	g.mu.Unlock()
	return nil
}

// Calendar returns the working-day calendar in use.
func (g *Gateway) Calendar() *Calendar { return g.cfg.Calendar }

// lock holds the right to decide and record entity's transfers: in this
// process, and, when the store is shared with other processes
// (EntityLocker), in all of them.
func (g *Gateway) lock(ctx context.Context, entity string) (func(), error) {
	m, _ := g.locks.LoadOrStore(entity, new(sync.Mutex))
	mu := m.(*sync.Mutex)
	mu.Lock()
	l, ok := g.cfg.Store.(EntityLocker)
	if !ok {
		return mu.Unlock, nil
	}
	unlock, err := l.LockEntity(ctx, entity)
	if err != nil {
		mu.Unlock()
		return nil, err
	}
	return func() { unlock(); mu.Unlock() }, nil
}

// Entity returns the legal entity the deployment declares (its name by
// default): the counts are kept per entity.
func (g *Gateway) Entity() string { return g.cfg.Router.Deployment().LegalEntity() }

// cst is China Standard Time; China has no daylight saving time.
var cst = time.FixedZone("CST", 8*3600)

// zoneOf is where the calendar year and day of a source jurisdiction's
// law are counted.
func zoneOf(src domicile.Jurisdiction) *time.Location {
	if src == "CN" {
		return cst
	}
	return time.UTC
}

// sourceFact maps a cell jurisdiction to the law engine's
// source_jurisdiction, or "" where the engine models no regime.
func sourceFact(j domicile.Jurisdiction) string {
	if j.InEU() {
		return "EU"
	}
	switch j {
	case "CN", "HK", "MO", "RU", "VN", "ID", "IN", "SA", "TR", "KZ", "NG", "US":
		return string(j)
	}
	return ""
}

func (g *Gateway) newID(prefix string) string {
	var b [8]byte
	io.ReadFull(g.cfg.Rand, b[:])
	return prefix + hex.EncodeToString(b[:])
}

func (g *Gateway) count(d *Decision) {
	g.statsMu.Lock()
	out := "refused"
	if d.Allowed {
		out = "allowed"
	}
	g.decisions[[2]string{out, d.Law}]++
	g.statsMu.Unlock()
}

// Stats returns the decisions made since start, by outcome and law
// mechanism, for metrics.
func (g *Gateway) Stats() map[[2]string]int64 {
	g.statsMu.Lock()
	defer g.statsMu.Unlock()
	out := make(map[[2]string]int64, len(g.decisions))
	for k, v := range g.decisions {
		out[k] = v
	}
	return out
}

// Consented reports whether subject ref has given consent (a purpose's
// consent such as "marketing") and not withdrawn it since. The cell asks
// on every read under a purpose that needs it.
func (g *Gateway) Consented(ctx context.Context, ref domicile.SubjectRef, consent string) (bool, error) {
	cs, err := g.cfg.Store.Consent(ctx, domicile.ConsentKind(consent), []domicile.SubjectRef{ref})
	if err != nil {
		return false, err
	}
	return cs[0] != nil && cs[0].Granted, nil
}
