// Package cell is one regional cell of a domicile deployment: it checks
// that a subject belongs here under the residency policy, authorizes each
// access, seals and opens data with the subject's key, stores it, and
// records every access, allowed or denied, in the cell's log.
//
// Every attempt on a subject goes through one type, [Access], which keeps
// the order of the steps:
//
//	authorize → locate the subject here → purpose → remote gate → event → read or write
//
// A write's events commit in the same durable transaction as its data; a
// read's events are durable before its data is returned. The cell exports
// neither its store nor its keyring: reports, authority disclosures,
// transfers and the HTTP API reach a subject's data only through the
// cell's operations, each of which is one Access. What the cell does
// export of its storage is public by design (the log's leaves, hashes and
// checkpoints: [Cell.PublicLog]) or holds no data key ([Cell.Custody]).
package cell

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	// CAC treats access from abroad as export). Without a gate, reads from
	// abroad are refused.
	Gate RemoteGate
	// Consents answers whether a subject has given the consent a purpose
	// needs. Without it, purposes that need a consent read nothing.
	Consents Consents
	// Logger receives the causes of fail-closed refusals (a log write that
	// failed, such as a failed fsync) and of key custody errors; nil
	// discards them.
	Logger *slog.Logger
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

	// mv holds the subjects in flight to another cell (migrate.go).
	mv moves
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cell{id: cfg.Cell.ID, cfg: cfg, store: cfg.Store, dep: cfg.Deployment, subjects: map[domicile.SubjectRef]*domicile.StoredSubject{}, records: newRecordCache()}
	c.keys = keyring.New(keyring.Config{
		Cell: cfg.Cell.ID, KEK: cfg.KEK, Store: cfg.KeyStore, CacheSize: cfg.KeyCacheSize,
		Rand: cfg.Rand, Now: cfg.Now, OnUnwrap: c.onUnwrap, Logger: cfg.Logger,
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

// UseDeployment swaps in a reloaded deployment (for example a new
// operator of this cell, or new purposes).
func (c *Cell) UseDeployment(d *domicile.Deployment) {
	c.mu.Lock()
	c.dep = d
	c.mu.Unlock()
}

func (c *Cell) deployment() *domicile.Deployment {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.dep
}

// SubjectKey names a subject: the raw id the request gave (used only in
// answers; never stored) and the pseudonymous reference of its current
// registration.
type SubjectKey struct {
	ID  string
	Ref domicile.SubjectRef
}

type reqKey struct{}

// onUnwrap records each KEK unwrap of the access in ctx as a key-unwrap
// event of that access.
func (c *Cell) onUnwrap(ctx context.Context, a kms.Access, err error) {
	x, ok := ctx.Value(reqKey{}).(*Access)
	if !ok {
		return
	}
	out, detail := domicile.Allowed, ""
	if err != nil {
		out, detail = domicile.Denied, errorDetail(err)
	}
	x.pending = append(x.pending, x.event(domicile.ActKeyUnwrap, "data-key", out, detail))
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
	// The same bytes as json.Marshal(e), without reflection.
	committed, err := e.AppendJSON(make([]byte, 0, 320))
	if err != nil {
		return nil, fmt.Errorf("cell: event: %w", err)
	}
	salt, err := leaf.NewSalt(rnd)
	if err != nil {
		return nil, fmt.Errorf("cell: salt: %w", err)
	}
	l := LeafOf(e)
	l.Commitment = leaf.Commit(salt, committed)
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("cell: leaf: %w", err)
	}
	return &domicile.LogEntry{Time: e.Time, Leaf: leaf.Format(l), Committed: committed, Salt: salt}, nil
}

// LeafOf returns the public metadata of e's log leaf, without its
// commitment: the minute, action, role, outcome and public tags
// ([domicile.Event.PublicTags]). What a leaf says of an event is defined
// here only; the figures of the reports count these.
func LeafOf(e domicile.Event) leaf.Leaf {
	return leaf.Leaf{Time: e.Time.Truncate(time.Minute), Action: string(e.Action), Role: string(e.Role), Outcome: string(e.Outcome), Tags: e.PublicTags()}
}

// logFailure is the fail-closed answer when an access's event cannot be
// written: nothing is returned or changed. The cause goes to the cell's
// logger, never to the client.
func logFailure(c *Cell, err error) error {
	c.cfg.Logger.Error("access log write failed; access refused (fail closed)", "cell", c.id, "err", err)
	return &domicile.Error{Code: domicile.EUnavailable, Message: "the access log cannot be written; no data was returned or changed", RetryAfter: 1}
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

// custodyAccess is how an access presents itself to the key custodian.
func (c *Cell) custodyAccess(x *Access) kms.Access {
	a := x.actor
	reason := a.Basis()
	switch a.Role {
	case domicile.RoleSubject:
		reason = kms.ReasonSubjectRequest
	}
	return kms.Access{Cell: c.id, Role: string(a.Role), Jurisdiction: string(a.Jurisdiction), Reason: reason, Reference: a.Reference, Subject: x.sub.Ref.String()}
}

// Remote reports whether actor a acts from outside the cell's
// jurisdiction (a member state of the EU is inside an EU cell).
func (c *Cell) Remote(a domicile.Actor) bool {
	cj := c.Config().Jurisdiction
	return a.Jurisdiction != "" && !cj.Covers(a.Jurisdiction)
}

// Categories returns the data categories of the given fields of a kind.
func (c *Cell) Categories(kind string, fields []string) []domicile.Category {
	k := c.deployment().Kind(kind)
	if k == nil {
		return nil
	}
	return k.Categories(fields)
}

// Note records an event about subject s that carries no subject data: a
// consent given or withdrawn, a notice delivered or acknowledged. The
// role rules for act apply, the subject must live here, and the event is
// durable before Note returns. A refusal is itself logged.
func (c *Cell) Note(ctx context.Context, a domicile.Actor, s SubjectKey, act domicile.Action, resource, detail string) (*domicile.LogEntry, error) {
	release, err := c.enterWrite(ctx, s.Ref)
	if err != nil {
		return nil, err
	}
	defer release()
	switch act {
	case domicile.ActConsent, domicile.ActNotice, domicile.ActTransfer:
	default:
		return nil, fmt.Errorf("cell: Note records consents, notices and transfers, not %s", act)
	}
	x, err := c.begin(ctx, a, s, act, resource)
	if err != nil {
		return nil, err
	}
	le, err := x.allow(ctx, detail)
	if err != nil {
		return nil, logFailure(c, err)
	}
	return le, nil
}

// NoteSystem records an event of the service itself that concerns no one
// subject (a threshold warning), durable before it returns.
func (c *Cell) NoteSystem(ctx context.Context, act domicile.Action, resource, detail string) (*domicile.LogEntry, error) {
	x := &Access{c: c, actor: domicile.Actor{Role: domicile.RoleSystem}, act: act, res: resource}
	le, err := x.allow(ctx, detail)
	if err != nil {
		return nil, logFailure(c, err)
	}
	return le, nil
}

// CreateSubject registers a subject in this cell under the reference of
// its new registration. The cell itself checks that the residency policy
// places subjects of jurisdiction j here, whatever a router or client
// claims.
func (c *Cell) CreateSubject(ctx context.Context, a domicile.Actor, s SubjectKey, j domicile.Jurisdiction) (*domicile.Subject, error) {
	x := &Access{c: c, actor: a, sub: s, act: domicile.ActWrite, res: "subject"}
	if a.Role != domicile.RoleApp {
		return nil, x.deny(ctx, domicile.Errorf(domicile.EForbidden, "only an app token registers subjects"))
	}
	if _, err := c.deployment().Place(j, c.id); err != nil {
		return nil, x.deny(ctx, err)
	}
	if _, err := c.store.Subject(ctx, s.Ref); err == nil {
		return nil, domicile.Errorf(domicile.EConflict, "subject already registered")
	}
	if err := c.keys.Create(ctx, s.Ref, 0); err != nil {
		return nil, err
	}
	now := c.cfg.Now().UTC()
	_, err := x.allow(ctx, "", &domicile.PutSubject{Subject: domicile.StoredSubject{Ref: s.Ref, Jurisdiction: j, Created: now}})
	if errors.Is(err, domicile.ErrVersionMismatch) {
		return nil, domicile.Errorf(domicile.EConflict, "subject already registered")
	}
	if err != nil {
		return nil, logFailure(c, err)
	}
	return &domicile.Subject{ID: s.ID, Jurisdiction: j, Cell: c.id, Created: now}, nil
}

// GetSubject returns a subject's registration. From abroad it passes the
// gate: that the subject exists, and where, is personal information.
func (c *Cell) GetSubject(ctx context.Context, a domicile.Actor, s SubjectKey) (*domicile.Subject, error) {
	x, err := c.begin(ctx, a, s, domicile.ActRead, "subject")
	if err != nil {
		return nil, err
	}
	if _, err := x.gate(ctx, map[string][]string{"subject": {"registration"}}); err != nil {
		return nil, x.deny(ctx, err)
	}
	if err := x.allowRead(ctx); err != nil {
		return nil, err
	}
	return &domicile.Subject{ID: s.ID, Jurisdiction: x.stored.Jurisdiction, Cell: c.id, Created: x.stored.Created}, nil
}

// SubjectEvents returns a page of a subject's events (after the index
// after) for the subject itself or an auditor. The listing is itself an
// event, committed before the page is returned; an auditor acting from
// abroad passes the gate (the trail names the subject's records).
func (c *Cell) SubjectEvents(ctx context.Context, a domicile.Actor, s SubjectKey, after int64, limit int) ([]domicile.StoredEvent, error) {
	x := &Access{c: c, actor: a, sub: s, act: domicile.ActList, res: "events"}
	switch {
	case a.Role == domicile.RoleAuditor:
	case a.Role == domicile.RoleSubject && a.Subject == s.Ref.String():
	default:
		return nil, x.deny(ctx, domicile.Errorf(domicile.EForbidden, "a subject's events are for that subject's token or an auditor"))
	}
	sub, err := c.locate(ctx, s)
	if err != nil {
		return nil, err
	}
	x.stored = sub
	if _, err := x.gate(ctx, map[string][]string{"events": {"trail"}}); err != nil {
		return nil, x.deny(ctx, err)
	}
	if err := x.allowRead(ctx); err != nil {
		return nil, err
	}
	return c.store.SubjectEvents(ctx, s.Ref, after, limit)
}
