// Package residency routes each subject to its home cell and refuses
// placements the policy forbids. The directory it keeps maps keyed hashes
// of subject ids (HMAC-SHA256 under a deployment key) to cells: it never
// holds a raw id.
package residency

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"golang.org/x/text/unicode/norm"

	"domicile"
	"domicile/cell"
)

// Router is safe for concurrent use.
type Router struct {
	dep   atomic.Pointer[domicile.Deployment]
	cells map[string]*cell.Cell
	dir   domicile.ControlStore
	key   []byte
	// macs pools HMACs keyed with key: every request computes one, and
	// a new HMAC costs two SHA-256 blocks and four allocations more than
	// a reset one.
	macs sync.Pool

	// homes caches the directory (key → home), bounded; entries change
	// only by erasure, which drops them.
	hmu   sync.Mutex
	homes map[domicile.SubjectRef]domicile.Home

	// umu guards unavailable: cells of the deployment this router does
	// not serve, and why (SetUnavailable).
	umu         sync.RWMutex
	unavailable map[string]string
}

const homeCacheSize = 200_000

// New returns a router over the given cells. key is the directory key
// (32 random bytes kept by the deployment).
func New(dep *domicile.Deployment, cells []*cell.Cell, dir domicile.ControlStore, key []byte) *Router {
	r := &Router{cells: map[string]*cell.Cell{}, dir: dir, key: key, homes: map[domicile.SubjectRef]domicile.Home{}}
	r.macs.New = func() any { return hmac.New(sha256.New, key) }
	r.dep.Store(dep)
	for _, c := range cells {
		r.cells[c.ID()] = c
	}
	return r
}

// Deployment returns the deployment in force.
func (r *Router) Deployment() *domicile.Deployment { return r.dep.Load() }

// SetDeployment swaps in a reloaded deployment. Cells keep their data; a
// change of operator or declarations takes effect at once.
func (r *Router) SetDeployment(d *domicile.Deployment) {
	r.dep.Store(d)
	for _, c := range r.cells {
		c.UseDeployment(d)
	}
}

// SetUnavailable records that cell, a cell of the deployment, does not
// serve, and why (a sentence, such as a failed integrity check on open):
// requests for its subjects are answered EUnavailable with that reason
// instead of "not served by this process".
func (r *Router) SetUnavailable(cell, reason string) {
	r.umu.Lock()
	defer r.umu.Unlock()
	if r.unavailable == nil {
		r.unavailable = map[string]string{}
	}
	r.unavailable[cell] = reason
}

// notServed is the error for a cell this router has no cell for: the
// cell is unavailable here (SetUnavailable), or it runs as its own
// process elsewhere (serve --cell), and the request was misdirected.
func (r *Router) notServed(cell, what string) error {
	r.umu.RLock()
	reason, ok := r.unavailable[cell]
	r.umu.RUnlock()
	if ok {
		return domicile.Errorf(domicile.EUnavailable, "%s %s refuses to serve: %s", what, cell, reason)
	}
	return domicile.Errorf(domicile.EMisdirected, "%s %s is served by another process: send the request through the deployment's router", what, cell)
}

// refusing reports whether cell is a cell of this process that refuses
// to serve (SetUnavailable).
func (r *Router) refusing(cell string) bool {
	r.umu.RLock()
	defer r.umu.RUnlock()
	_, ok := r.unavailable[cell]
	return ok
}

// Serves returns nil if this router serves cell, and otherwise the error
// a request for that cell's data gets: EUnavailable for a cell of this
// process that refuses to serve, EMisdirected for a cell that runs as
// its own process elsewhere.
func (r *Router) Serves(cell string) error {
	if r.cells[cell] != nil {
		return nil
	}
	return r.notServed(cell, "cell")
}

// Cells returns the cells in id order.
func (r *Router) Cells() []*cell.Cell {
	out := make([]*cell.Cell, 0, len(r.cells))
	for _, c := range r.cells {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}

// CellByID returns a cell, or nil.
func (r *Router) CellByID(id string) *cell.Cell { return r.cells[id] }

// dirKey returns the directory key of a subject id: the HMAC of its NFC
// form under the deployment's directory key. It is not the subject's reference: that is
// drawn fresh at each registration.
func (r *Router) dirKey(id string) domicile.SubjectRef {
	m := r.macs.Get().(hash.Hash)
	m.Reset()
	io.WriteString(m, norm.NFC.String(id))
	var k domicile.SubjectRef
	m.Sum(k[:0])
	r.macs.Put(m)
	return k
}

// Ref returns the reference of the current registration of subject id,
// for minting a token that reaches that registration only. An id that is
// not registered is a problem naming the field "subject".
func (r *Router) Ref(ctx context.Context, id string) (domicile.SubjectRef, error) {
	h, err := r.Home(ctx, id)
	if domicile.ErrorCode(err) == domicile.ENotFound {
		return h.Ref, domicile.FieldErrorf("subject", "no subject %q is registered", truncate(id, 32))
	}
	return h.Ref, err
}

// Home returns the directory entry of subject id (its home cell and the
// reference of its current registration) wherever that cell is served:
// it is what a router of cell processes forwards by. An id that is not
// registered is ENotFound.
func (r *Router) Home(ctx context.Context, id string) (domicile.Home, error) {
	id, err := canonicalID(id)
	if err != nil {
		return domicile.Home{}, err
	}
	h, err := r.home(ctx, r.dirKey(id))
	if errors.Is(err, domicile.ErrNotFound) {
		return h, domicile.Errorf(domicile.ENotFound, "no such subject")
	}
	return h, err
}

// home reads the directory entry under key, from the cache when it is
// there. Only entries whose cell this router serves are cached: such an
// entry changes only by an erasure in that cell, which goes through this
// router and drops it; an entry of a cell served by another process may
// change there (erased, and the id registered again elsewhere), so it is
// read afresh each time.
func (r *Router) home(ctx context.Context, key domicile.SubjectRef) (domicile.Home, error) {
	r.hmu.Lock()
	h, cached := r.homes[key]
	r.hmu.Unlock()
	if cached {
		return h, nil
	}
	h, err := r.dir.Home(ctx, key)
	if err == nil && r.cells[h.Cell] != nil {
		r.cacheHome(key, h)
	}
	return h, err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// PersonKey returns the keyed hash of a subject id, the same for every
// registration of the id. The transfer ledger counts people by it, since
// the law counts distinct individuals; nothing else is keyed by it but
// the directory. It is not the subject's reference.
func (r *Router) PersonKey(id string) domicile.SubjectRef { return r.dirKey(id) }

// canonicalID checks a subject id and returns its Unicode NFC form: the
// composed and decomposed spellings of one name are one subject.
func canonicalID(id string) (string, error) {
	if err := domicile.ValidateID("id", id); err != nil {
		return "", err
	}
	if n := norm.NFC.String(id); n != id {
		return n, domicile.ValidateID("id", n)
	}
	return id, nil
}

// newRef draws the reference of a new registration.
func newRef() (domicile.SubjectRef, error) {
	var ref domicile.SubjectRef
	if _, err := rand.Read(ref[:]); err != nil {
		return ref, fmt.Errorf("residency: new reference: %w", err)
	}
	return ref, nil
}

// Register places a new subject in its home cell: the policy's default for
// its jurisdiction, or the cell asked for if the policy permits it. The
// registration gets a fresh reference, unrelated to any earlier
// registration of the same id. A forbidden placement is refused by the
// cell asked for, which logs the refusal; nothing else is written.
func (r *Router) Register(ctx context.Context, a domicile.Actor, id string, j domicile.Jurisdiction, requested string) (*domicile.Subject, error) {
	id, err := canonicalID(id)
	if err != nil {
		return nil, err
	}
	dep := r.dep.Load()
	ref, err := newRef()
	if err != nil {
		return nil, err
	}
	key := r.dirKey(id)
	k := cell.SubjectKey{ID: id, Ref: ref}
	home, err := dep.Place(j, requested)
	if err != nil {
		if domicile.ErrorCode(err) == domicile.EResidency && r.cells[requested] != nil {
			// Let the cell asked for refuse it itself, so the refusal is in its log.
			if _, cerr := r.cells[requested].CreateSubject(ctx, a, k, j); cerr != nil {
				return nil, cerr
			}
		}
		return nil, err
	}
	c := r.cells[home]
	if c == nil && r.refusing(home) {
		return nil, r.notServed(home, "cell")
	}
	if c == nil {
		// The policy's home is served elsewhere. A cell of this process
		// where the policy does not permit the subject refuses it itself,
		// and logs the refusal, whatever sent the request here: a cell
		// does not trust a router to place subjects.
		for _, lc := range r.Cells() {
			if _, perr := dep.Place(j, lc.ID()); domicile.ErrorCode(perr) == domicile.EResidency {
				if _, cerr := lc.CreateSubject(ctx, a, k, j); cerr != nil {
					return nil, cerr
				}
				return nil, perr
			}
		}
		return nil, r.notServed(home, "the subject's home cell")
	}
	if a.Role != domicile.RoleApp {
		_, err := c.CreateSubject(ctx, a, k, j) // refuses and logs
		return nil, err
	}
	if err := r.dir.PutHome(ctx, key, domicile.Home{Cell: home, Ref: ref}); errors.Is(err, domicile.ErrVersionMismatch) {
		return nil, domicile.Errorf(domicile.EConflict, "subject already registered")
	} else if err != nil {
		return nil, err
	}
	s, err := c.CreateSubject(ctx, a, k, j)
	if err != nil {
		r.dir.DeleteHome(context.WithoutCancel(ctx), key)
		return nil, err
	}
	r.cacheHome(key, domicile.Home{Cell: home, Ref: ref})
	return s, nil
}

// cacheHome remembers a directory entry, evicting one if the cache is
// full.
func (r *Router) cacheHome(key domicile.SubjectRef, h domicile.Home) {
	r.hmu.Lock()
	defer r.hmu.Unlock()
	if len(r.homes) >= homeCacheSize {
		for k := range r.homes {
			delete(r.homes, k)
			break
		}
	}
	r.homes[key] = h
}

// Locate returns the home cell of a subject and its key. For an id that
// is not registered it returns ENotFound and a key with the id and a zero
// reference.
func (r *Router) Locate(ctx context.Context, id string) (*cell.Cell, cell.SubjectKey, error) {
	id, err := canonicalID(id)
	if err != nil {
		return nil, cell.SubjectKey{}, err
	}
	h, err := r.home(ctx, r.dirKey(id))
	k := cell.SubjectKey{ID: id, Ref: h.Ref}
	if errors.Is(err, domicile.ErrNotFound) {
		return nil, k, domicile.Errorf(domicile.ENotFound, "no such subject")
	}
	if err != nil {
		return nil, k, err
	}
	c := r.cells[h.Cell]
	if c == nil {
		return nil, k, r.notServed(h.Cell, "the subject's cell")
	}
	return c, k, nil
}

// LocateFor is Locate for actor a: for a subject that does not exist, an
// actor the role rules would refuse anyway (an admin, another subject's
// token) gets that refusal, not "no such subject", so that probing ids
// tells a refused actor nothing about who is registered.
func (r *Router) LocateFor(ctx context.Context, a domicile.Actor, id string, act domicile.Action) (*cell.Cell, cell.SubjectKey, error) {
	c, k, err := r.Locate(ctx, id)
	if domicile.ErrorCode(err) == domicile.ENotFound && k.ID != "" {
		if aerr := cell.Authorize(a, k, act); aerr != nil {
			return nil, k, aerr
		}
	}
	return c, k, err
}

// Erase crypto-shreds a subject in its home cell, removes it from the
// directory and revokes every token that reaches it, so that nothing
// links the erased registration to a later one of the same id.
func (r *Router) Erase(ctx context.Context, a domicile.Actor, id string) (*domicile.ErasureReceipt, error) {
	c, k, err := r.LocateFor(ctx, a, id, domicile.ActErase)
	if err != nil {
		return nil, err
	}
	rec, err := c.EraseSubject(ctx, a, k)
	if err != nil {
		return nil, err
	}
	key := r.dirKey(id)
	r.hmu.Lock()
	delete(r.homes, key)
	r.hmu.Unlock()
	if err := r.dir.DeleteHome(context.WithoutCancel(ctx), key); err != nil {
		return rec, err
	}
	if _, err := r.dir.RevokeSubjectTokens(context.WithoutCancel(ctx), k.Ref.String(), rec.Time); err != nil {
		return rec, err
	}
	return rec, nil
}

// Moved tells the router that a migration switched subject key's
// directory entry to h: the cached entry, if any, is replaced.
func (r *Router) Moved(key domicile.SubjectRef, h domicile.Home) {
	r.hmu.Lock()
	delete(r.homes, key)
	r.hmu.Unlock()
	if r.cells[h.Cell] != nil {
		r.cacheHome(key, h)
	}
}
