// Package residency routes each subject to its home cell and refuses
// placements the policy forbids. The directory it keeps maps keyed hashes
// of subject ids (HMAC-SHA256 under a deployment key) to cells: it never
// holds a raw id.
package residency

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"sort"
	"sync"
	"sync/atomic"

	"domicile"
	"domicile/cell"
)

// Router is safe for concurrent use.
type Router struct {
	dep   atomic.Pointer[domicile.Deployment]
	cells map[string]*cell.Cell
	dir   domicile.ControlStore
	key   []byte

	// homes caches the directory (reference → cell), bounded; entries
	// change only by erasure, which drops them.
	hmu   sync.Mutex
	homes map[domicile.SubjectRef]string
}

const homeCacheSize = 200_000

// New returns a router over the given cells. key is the directory key
// (32 random bytes kept by the deployment).
func New(dep *domicile.Deployment, cells []*cell.Cell, dir domicile.ControlStore, key []byte) *Router {
	r := &Router{cells: map[string]*cell.Cell{}, dir: dir, key: key, homes: map[domicile.SubjectRef]string{}}
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
		c.SetDeployment(d)
	}
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

// Ref returns the pseudonymous reference of a subject id.
func (r *Router) Ref(id string) domicile.SubjectRef {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(id))
	var ref domicile.SubjectRef
	copy(ref[:], m.Sum(nil))
	return ref
}

// Key returns the subject key of id.
func (r *Router) Key(id string) cell.SubjectKey { return cell.SubjectKey{ID: id, Ref: r.Ref(id)} }

// Register places a new subject in its home cell: the policy's default for
// its jurisdiction, or the cell asked for if the policy permits it. A
// forbidden placement is refused by the cell asked for, which logs the
// refusal; nothing else is written.
func (r *Router) Register(ctx context.Context, a domicile.Actor, id string, j domicile.Jurisdiction, requested string) (*domicile.Subject, error) {
	if err := domicile.ValidateID("id", id); err != nil {
		return nil, err
	}
	dep := r.dep.Load()
	k := r.Key(id)
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
	if c == nil {
		return nil, domicile.Errorf(domicile.EUnavailable, "cell %s is not served by this process", home)
	}
	if a.Role != domicile.RoleApp {
		_, err := c.CreateSubject(ctx, a, k, j) // refuses and logs
		return nil, err
	}
	if err := r.dir.PutHome(ctx, k.Ref, home); errors.Is(err, domicile.ErrVersionMismatch) {
		return nil, domicile.Errorf(domicile.EConflict, "subject already registered")
	} else if err != nil {
		return nil, err
	}
	s, err := c.CreateSubject(ctx, a, k, j)
	if err != nil {
		r.dir.DeleteHome(context.WithoutCancel(ctx), k.Ref)
		return nil, err
	}
	return s, nil
}

// Locate returns the home cell of a subject.
func (r *Router) Locate(ctx context.Context, id string) (*cell.Cell, cell.SubjectKey, error) {
	if err := domicile.ValidateID("id", id); err != nil {
		return nil, cell.SubjectKey{}, err
	}
	k := r.Key(id)
	r.hmu.Lock()
	home, cached := r.homes[k.Ref]
	r.hmu.Unlock()
	var err error
	if !cached {
		home, err = r.dir.Home(ctx, k.Ref)
		if err == nil {
			r.hmu.Lock()
			if len(r.homes) >= homeCacheSize {
				for k := range r.homes {
					delete(r.homes, k)
					break
				}
			}
			r.homes[k.Ref] = home
			r.hmu.Unlock()
		}
	}
	if errors.Is(err, domicile.ErrNotFound) {
		return nil, k, domicile.Errorf(domicile.ENotFound, "no such subject")
	}
	if err != nil {
		return nil, k, err
	}
	c := r.cells[home]
	if c == nil {
		return nil, k, domicile.Errorf(domicile.EUnavailable, "the subject's cell %s is not served by this process", home)
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

// Erase crypto-shreds a subject in its home cell and removes it from the
// directory.
func (r *Router) Erase(ctx context.Context, a domicile.Actor, id string) (*domicile.ErasureReceipt, error) {
	c, k, err := r.LocateFor(ctx, a, id, domicile.ActErase)
	if err != nil {
		return nil, err
	}
	rec, err := c.EraseSubject(ctx, a, k)
	if err != nil {
		return nil, err
	}
	r.hmu.Lock()
	delete(r.homes, k.Ref)
	r.hmu.Unlock()
	if err := r.dir.DeleteHome(ctx, k.Ref); err != nil {
		return rec, err
	}
	return rec, nil
}
