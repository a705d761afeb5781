// Package cell is one regional cell of a domicile deployment: it checks
// that a subject belongs here under the residency policy, authorizes each
// access, seals and opens data with the subject's key, stores it, and
// records every access, allowed or denied, in the cell's log.
//
// Every request follows the same steps, each one call in this package:
//
//	authorize → locate the subject here → data key (custody) → seal/open → commit data + events
//
// A write's events commit in the same durable transaction as its data; a
// read's events are durable before its data is returned.
package cell

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"domicile"
	"domicile/keyring"
	"domicile/kms"
	"domicile/leaf"
)

// Config configures a Cell.
type Config struct {
	Cell       domicile.CellConfig
	Deployment *domicile.Deployment
	Store      domicile.CellStore
	KEK        kms.KEK
	KeyStore   domicile.KeyStore
	// KeyCacheSize bounds the cache of unwrapped data keys (0: default).
	KeyCacheSize int
	Now          func() time.Time
	Rand         io.Reader
	// Gate, if set, rules on every read by an actor acting from outside
	// the cell's jurisdiction: such a read is a cross-border transfer (the
	// CAC treats access from abroad as export). It returns nil to allow,
	// or the refusal.
	Gate RemoteGate
}

// RemoteGate decides a remote access: actor a, acting from another
// jurisdiction than the cell's, reads data of subject s whose fields fall
// into cats. It must count the subject against the transfer thresholds
// when it allows.
type RemoteGate interface {
	RemoteAccess(ctx context.Context, cell domicile.CellConfig, a domicile.Actor, s SubjectKey, sub *domicile.StoredSubject, cats []domicile.Category) error
}

// Cell serves one cell. It is safe for concurrent use.
type Cell struct {
	id    string
	cfg   Config
	store domicile.CellStore
	keys  *keyring.Keyring

	mu  sync.RWMutex
	dep *domicile.Deployment

	// records caches sealed records (see recordCache).
	records *recordCache

	// subjects caches subject rows, which never change but by erasure.
	smu      sync.Mutex
	subjects map[domicile.SubjectRef]*domicile.StoredSubject
}

// subjectCacheSize bounds the subject cache; past it an arbitrary entry
// is dropped (map iteration order), which is cheap and good enough for a
// cache of immutable rows.
const subjectCacheSize = 100_000

// New returns a cell.
func New(cfg Config) *Cell {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	c := &Cell{id: cfg.Cell.ID, cfg: cfg, store: cfg.Store, dep: cfg.Deployment, subjects: map[domicile.SubjectRef]*domicile.StoredSubject{}, records: newRecordCache()}
	c.keys = keyring.New(keyring.Config{
		Cell: cfg.Cell.ID, KEK: cfg.KEK, Store: cfg.KeyStore, CacheSize: cfg.KeyCacheSize,
		Rand: cfg.Rand, Now: cfg.Now, OnUnwrap: c.onUnwrap,
	})
	return c
}

// ID returns the cell's id.
func (c *Cell) ID() string { return c.id }

// Config returns the cell's declaration.
func (c *Cell) Config() domicile.CellConfig {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if cc := c.dep.Cell(c.id); cc != nil {
		return *cc
	}
	return c.cfg.Cell
}

// Store returns the cell's store.
func (c *Cell) Store() domicile.CellStore { return c.store }

// Keyring returns the cell's keyring.
func (c *Cell) Keyring() *keyring.Keyring { return c.keys }

// SetDeployment swaps in a reloaded deployment (for example a new operator
// of this cell).
func (c *Cell) SetDeployment(d *domicile.Deployment) {
	c.mu.Lock()
	c.dep = d
	c.mu.Unlock()
}

func (c *Cell) deployment() *domicile.Deployment {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.dep
}

// SubjectKey names a subject: the raw id the request gave (used only to
// authorize subject tokens; never stored) and its pseudonymous reference.
type SubjectKey struct {
	ID  string
	Ref domicile.SubjectRef
}

// request carries one access through its steps and gathers its events.
type request struct {
	actor  domicile.Actor
	sub    SubjectKey
	events []domicile.Event
}

type reqKey struct{}

func (c *Cell) newRequest(a domicile.Actor, s SubjectKey) *request {
	return &request{actor: a, sub: s}
}

func (c *Cell) event(r *request, act domicile.Action, resource string, out domicile.Outcome, detail string) domicile.Event {
	return domicile.Event{
		Time: c.cfg.Now().UTC(), Cell: c.id, Subject: r.sub.Ref.String(),
		Role: r.actor.Role, Jurisdiction: r.actor.Jurisdiction, TokenID: r.actor.TokenID,
		Action: act, Resource: resource, Basis: r.actor.Basis(), Reference: r.actor.Reference,
		Outcome: out, Detail: detail,
	}
}

// onUnwrap records each KEK unwrap of the request in ctx as a key-unwrap event.
func (c *Cell) onUnwrap(ctx context.Context, a kms.Access, err error) {
	r, ok := ctx.Value(reqKey{}).(*request)
	if !ok {
		return
	}
	out, detail := domicile.Allowed, ""
	if err != nil {
		out, detail = domicile.Denied, errorDetail(err)
	}
	r.events = append(r.events, c.event(r, domicile.ActKeyUnwrap, "data-key", out, detail))
}

func errorDetail(err error) string {
	var d *kms.DeniedError
	switch {
	case errors.As(err, &d):
		return "custodian-denied:" + d.Clause
	case errors.Is(err, kms.ErrUnavailable):
		return "custodian-unavailable"
	}
	return domicile.ErrorCode(err)
}

// entries turns events into log entries.
func (c *Cell) entries(evs []domicile.Event, ref domicile.SubjectRef) ([]*domicile.LogEntry, error) {
	out := make([]*domicile.LogEntry, 0, len(evs))
	for _, e := range evs {
		le, err := Entry(c.cfg.Rand, e)
		if err != nil {
			return nil, err
		}
		le.Ref = ref
		out = append(out, le)
	}
	return out, nil
}

// Entry makes the log entry of an event: its canonical JSON, a fresh salt,
// and the public leaf committing to both.
func Entry(rnd io.Reader, e domicile.Event) (*domicile.LogEntry, error) {
	committed, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("cell: event: %w", err)
	}
	salt, err := leaf.NewSalt(rnd)
	if err != nil {
		return nil, fmt.Errorf("cell: salt: %w", err)
	}
	l := leaf.Leaf{Time: e.Time.Truncate(time.Minute), Action: string(e.Action), Role: string(e.Role), Outcome: string(e.Outcome), Commitment: leaf.Commit(salt, committed)}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("cell: leaf: %w", err)
	}
	return &domicile.LogEntry{Time: e.Time, Leaf: leaf.Format(l), Committed: committed, Salt: salt}, nil
}

// commit makes ops and the request's events durable in one batch.
func (c *Cell) commit(ctx context.Context, r *request, ops ...domicile.Op) ([]*domicile.LogEntry, error) {
	les, err := c.entries(r.events, r.sub.Ref)
	if err != nil {
		return nil, err
	}
	if err := c.store.Commit(ctx, &domicile.Batch{Ops: ops, Events: les}); err != nil {
		return nil, err
	}
	return les, nil
}

// deny records a refusal (with the request's other events) and returns
// cause. If the refusal cannot be logged, the access fails closed with the
// logging error.
func (c *Cell) deny(ctx context.Context, r *request, act domicile.Action, resource string, cause error) error {
	r.events = append(r.events, c.event(r, act, resource, domicile.Denied, errorDetail(cause)))
	if _, err := c.commit(ctx, r); err != nil {
		return logFailure(err)
	}
	return cause
}

func logFailure(err error) error {
	return &domicile.Error{Code: domicile.EUnavailable, Message: "the access log cannot be written; no data was returned or changed", RetryAfter: 1}
}

// Authorize applies the role rules to an access of subject s: admin and
// auditor read no subject data, a subject token reaches only its own
// subject, operators and authorities read with a justification, writes
// come from the app or the subject itself.
func Authorize(a domicile.Actor, s SubjectKey, act domicile.Action) error {
	switch a.Role {
	case domicile.RoleAdmin:
		return domicile.Errorf(domicile.EForbidden, "an admin token runs the deployment and reads no subject data")
	case domicile.RoleAuditor:
		return domicile.Errorf(domicile.EForbidden, "an auditor reads logs and proofs, not subject data")
	case domicile.RoleSubject:
		if a.Subject != s.Ref.String() {
			return domicile.Errorf(domicile.EForbidden, "a subject token reaches only its own subject's data")
		}
		return nil
	case domicile.RoleApp:
		return nil
	case domicile.RoleOperator, domicile.RoleAuthority:
		if a.Reason == "" || a.Reference == "" {
			return domicile.Errorf(domicile.EForbidden, "an %s access needs a justification", a.Role)
		}
		switch act {
		case domicile.ActRead, domicile.ActList:
			return nil
		}
		return domicile.Errorf(domicile.EForbidden, "an %s may read with a justification but not change subject data", a.Role)
	}
	return domicile.Errorf(domicile.EForbidden, "role %q may not access subject data", a.Role)
}

// locate returns the subject's row, refusing subjects that do not live in
// this cell.
func (c *Cell) locate(ctx context.Context, s SubjectKey) (*domicile.StoredSubject, error) {
	c.smu.Lock()
	sub, ok := c.subjects[s.Ref]
	c.smu.Unlock()
	if ok {
		return sub, nil
	}
	sub, err := c.store.Subject(ctx, s.Ref)
	if errors.Is(err, domicile.ErrNotFound) {
		return nil, domicile.Errorf(domicile.ENotFound, "no such subject in cell %s", c.id)
	}
	if err != nil {
		return nil, err
	}
	c.smu.Lock()
	if len(c.subjects) >= subjectCacheSize {
		for k := range c.subjects {
			delete(c.subjects, k)
			break
		}
	}
	c.subjects[s.Ref] = sub
	c.smu.Unlock()
	return sub, nil
}

// forget drops a subject and its records from the caches (on erasure).
func (c *Cell) forget(ref domicile.SubjectRef) {
	c.smu.Lock()
	delete(c.subjects, ref)
	c.smu.Unlock()
	c.records.forget(ref)
}

func (c *Cell) access(r *request) kms.Access {
	a := r.actor
	reason := a.Basis()
	switch a.Role {
	case domicile.RoleSubject:
		reason = kms.ReasonSubjectRequest
	}
	return kms.Access{Cell: c.id, Role: string(a.Role), Jurisdiction: string(a.Jurisdiction), Reason: reason, Reference: a.Reference, Subject: r.sub.Ref.String()}
}

// dataKey fetches the subject's key for the request, recording unwraps.
func (c *Cell) dataKey(ctx context.Context, r *request, gen uint8) ([]byte, error) {
	return c.keys.DataKey(context.WithValue(ctx, reqKey{}, r), c.access(r), r.sub.Ref, gen)
}

// Remote reports whether actor a acts from outside the cell's
// jurisdiction (a member state of the EU is inside an EU cell).
func (c *Cell) Remote(a domicile.Actor) bool {
	cj := c.Config().Jurisdiction
	return a.Jurisdiction != "" && !cj.Covers(a.Jurisdiction)
}

// gate applies the remote-access gate to a read, if the actor is remote.
func (c *Cell) gate(ctx context.Context, r *request, sub *domicile.StoredSubject, cats []domicile.Category) error {
	if c.cfg.Gate == nil || !c.Remote(r.actor) {
		return nil
	}
	return c.cfg.Gate.RemoteAccess(ctx, c.Config(), r.actor, r.sub, sub, cats)
}

// Categories returns the data categories of the given fields of a kind.
func (c *Cell) Categories(kind string, fields []string) []domicile.Category {
	k := c.deployment().Kind(kind)
	if k == nil {
		return nil
	}
	return k.Categories(fields)
}

// Log commits one allowed event about subject s by actor a (a consent, a
// notice, a transfer decision) and returns its log entry.
func (c *Cell) Log(ctx context.Context, a domicile.Actor, s SubjectKey, act domicile.Action, resource, detail string) (*domicile.LogEntry, error) {
	r := c.newRequest(a, s)
	r.events = append(r.events, c.event(r, act, resource, domicile.Allowed, detail))
	les, err := c.commit(ctx, r)
	if err != nil {
		return nil, logFailure(err)
	}
	return les[0], nil
}

// Deny commits a denied event about subject s and returns cause (or the
// logging failure).
func (c *Cell) Deny(ctx context.Context, a domicile.Actor, s SubjectKey, act domicile.Action, resource string, cause error) error {
	return c.deny(ctx, c.newRequest(a, s), act, resource, cause)
}

// Locate returns the stored subject s if it lives in this cell.
func (c *Cell) Locate(ctx context.Context, s SubjectKey) (*domicile.StoredSubject, error) {
	return c.locate(ctx, s)
}

// CreateSubject registers a subject in this cell. The cell itself checks
// that the residency policy places subjects of jurisdiction j here,
// whatever a router or client claims.
func (c *Cell) CreateSubject(ctx context.Context, a domicile.Actor, s SubjectKey, j domicile.Jurisdiction) (*domicile.Subject, error) {
	r := c.newRequest(a, s)
	if a.Role != domicile.RoleApp {
		return nil, c.deny(ctx, r, domicile.ActWrite, "subject", domicile.Errorf(domicile.EForbidden, "only an app token registers subjects"))
	}
	if _, err := c.deployment().Place(j, c.id); err != nil {
		return nil, c.deny(ctx, r, domicile.ActWrite, "subject", err)
	}
	if _, err := c.store.Subject(ctx, s.Ref); err == nil {
		return nil, domicile.Errorf(domicile.EConflict, "subject already registered")
	}
	if err := c.keys.Create(ctx, s.Ref, 0); err != nil {
		return nil, err
	}
	now := c.cfg.Now().UTC()
	r.events = append(r.events, c.event(r, domicile.ActWrite, "subject", domicile.Allowed, ""))
	_, err := c.commit(ctx, r, &domicile.PutSubject{Subject: domicile.StoredSubject{Ref: s.Ref, Jurisdiction: j, Created: now}})
	if errors.Is(err, domicile.ErrVersionMismatch) {
		return nil, domicile.Errorf(domicile.EConflict, "subject already registered")
	}
	if err != nil {
		return nil, err
	}
	return &domicile.Subject{ID: s.ID, Jurisdiction: j, Cell: c.id, Created: now}, nil
}

// GetSubject returns a subject's registration.
func (c *Cell) GetSubject(ctx context.Context, a domicile.Actor, s SubjectKey) (*domicile.Subject, error) {
	r := c.newRequest(a, s)
	if err := Authorize(a, s, domicile.ActRead); err != nil {
		return nil, c.deny(ctx, r, domicile.ActRead, "subject", err)
	}
	sub, err := c.locate(ctx, s)
	if err != nil {
		return nil, err
	}
	r.events = append(r.events, c.event(r, domicile.ActRead, "subject", domicile.Allowed, ""))
	if _, err := c.commit(ctx, r); err != nil {
		return nil, logFailure(err)
	}
	return &domicile.Subject{ID: s.ID, Jurisdiction: sub.Jurisdiction, Cell: c.id, Created: sub.Created}, nil
}

// SubjectEvents returns a page of a subject's events (after the index
// after) for the subject itself or an auditor. The listing is itself an
// event, committed before the page is returned.
func (c *Cell) SubjectEvents(ctx context.Context, a domicile.Actor, s SubjectKey, after int64, limit int) ([]domicile.StoredEvent, error) {
	r := c.newRequest(a, s)
	switch {
	case a.Role == domicile.RoleAuditor:
	case a.Role == domicile.RoleSubject && a.Subject == s.Ref.String():
	default:
		return nil, c.deny(ctx, r, domicile.ActList, "events", domicile.Errorf(domicile.EForbidden, "a subject's events are for that subject's token or an auditor"))
	}
	if _, err := c.locate(ctx, s); err != nil {
		return nil, err
	}
	r.events = append(r.events, c.event(r, domicile.ActList, "events", domicile.Allowed, ""))
	if _, err := c.commit(ctx, r); err != nil {
		return nil, logFailure(err)
	}
	return c.store.SubjectEvents(ctx, s.Ref, after, limit)
}
