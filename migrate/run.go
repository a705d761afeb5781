package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"domicile"
	"domicile/cell"
)

// Migration states (domicile.Migration.State).
const (
	StatePlanned = "planned"
	StateRunning = "running"
	StateDone    = "done"
	// StateStopped: the run stopped on an error a retry will not cure
	// (the gate refused a cross-border move); Reason says why.
	StateStopped = "stopped"
)

// Options are a run's options.
type Options struct {
	// Retention is how long the source keeps its copy after the switch
	// before it is crypto-shredded.
	Retention time.Duration `json:"retention"`
	// Rate bounds subjects moved per second (0: no bound).
	Rate float64 `json:"rate"`
	// Reason is why a run stopped, if it did.
	Reason string `json:"reason,omitempty"`
}

// Target is what a move needs of its target cell: its migration key, a
// parcel brought in, a copy discarded. A *cell.Cell this process serves
// is one; a client of another cell process's cell-to-cell route can be
// another (doc/migration.md, "Separate cell processes").
type Target interface {
	MigrationKey(ctx context.Context) ([]byte, error)
	MigrateIn(ctx context.Context, p *cell.Parcel, note string) (digest string, index int64, err error)
	Discard(ctx context.Context, plan string, ref domicile.SubjectRef) error
}

var _ Target = (*cell.Cell)(nil)

// Hooks are what a Runner needs from the rest of the service.
type Hooks struct {
	// Cell returns a cell this process serves, or nil.
	Cell func(id string) *cell.Cell
	// Target returns the target cell id as a move reaches it, or nil if
	// it cannot. When Target is nil, the targets are the cells this
	// process serves (Cell).
	Target func(id string) Target
	// Deployment returns the deployment in force.
	Deployment func() *domicile.Deployment
	// Moved tells the router that a subject's home switched.
	Moved func(key domicile.SubjectRef, h domicile.Home)
	// Notices returns, for a change plan, how many of its notices are
	// not yet delivered and when the last delivered one was.
	Notices func(ctx context.Context, plan string) (pending int, last time.Time, err error)
	// Notice returns the id and delivery time of the notice of a
	// subject (by reference) in a change plan, if any.
	Notice func(ctx context.Context, plan string, ref domicile.SubjectRef) (id string, delivered time.Time, ok bool)
	// Transfer asks the transfer gate to approve a cross-border move of
	// one subject and count it in the ledger; it returns the ledger's
	// transfer id, or the gate's refusal.
	Transfer func(ctx context.Context, c *cell.Cell, s domicile.MigrationSubject, m Move) (string, error)
	// Checkpoint returns a signed checkpoint of a cell's log, published
	// now.
	Checkpoint func(ctx context.Context, cell string) (LogRef, error)
}

// Config configures a Runner.
type Config struct {
	Store  domicile.MigrationStore
	Hooks  Hooks
	Signer note.Signer
	Now    func() time.Time
	Logger *slog.Logger
	// Local makes the runner a cell process's: it checks and moves only
	// the subjects whose source cell Hooks.Cell serves, leaves the
	// others to their cells' processes, and writes the report only when
	// every subject of the plan is moved (the last source to finish).
	Local bool
}

// Runner runs migrations in the service. It is safe for concurrent use.
type Runner struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]bool
	done    map[string]chan struct{}
}

// New returns a runner; Close stops its runs (they resume at the next
// Resume).
func New(cfg Config) *Runner {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runner{cfg: cfg, ctx: ctx, cancel: cancel, running: map[string]bool{}, done: map[string]chan struct{}{}}
}

// Close stops the runs and waits for them.
func (r *Runner) Close() {
	r.cancel()
	r.wg.Wait()
}

// target returns the target cell id, or nil.
func (r *Runner) target(id string) Target {
	if r.cfg.Hooks.Target != nil {
		return r.cfg.Hooks.Target(id)
	}
	if c := r.cfg.Hooks.Cell(id); c != nil {
		return c
	}
	return nil
}

// Put stores a plan and its subjects. Planning the same change again
// returns the stored plan unchanged.
func (r *Runner) Put(ctx context.Context, p *Plan, subjects []domicile.MigrationSubject) (*Plan, error) {
	b, err := FormatPlan(p)
	if err != nil {
		return nil, err
	}
	err = r.cfg.Store.PutMigration(ctx, domicile.Migration{ID: p.ID, Plan: b, State: StatePlanned, Created: p.Created}, subjects)
	if errors.Is(err, domicile.ErrVersionMismatch) {
		return r.Plan(ctx, p.ID)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Plan returns a stored plan.
func (r *Runner) Plan(ctx context.Context, id string) (*Plan, error) {
	m, err := r.migration(ctx, id)
	if err != nil {
		return nil, err
	}
	return ParsePlan(m.Plan)
}

func (r *Runner) migration(ctx context.Context, id string) (*domicile.Migration, error) {
	if !ValidPlanID(id) {
		return nil, domicile.FieldErrorf("id", "a migration plan id is m- and 16 hex digits")
	}
	m, err := r.cfg.Store.Migration(ctx, id)
	if errors.Is(err, domicile.ErrNotFound) {
		return nil, domicile.Errorf(domicile.ENotFound, "no migration plan %s", id)
	}
	return m, err
}

// Check returns why plan p may not run now, or nil: a target cell this
// process does not serve, a target the residency policy in force does
// not permit for the subjects moving there, or notices not delivered the
// plan's lead time before now (naming the date the run may start).
// Cross-border moves are decided by the gate subject by subject.
func (r *Runner) Check(ctx context.Context, p *Plan) error {
	dep := r.cfg.Hooks.Deployment()
	for _, m := range p.Moves {
		if r.cfg.Local && r.cfg.Hooks.Cell(m.From) == nil {
			continue
		}
		if r.target(m.To) == nil || r.cfg.Hooks.Cell(m.From) == nil {
			missing := m.To
			if r.cfg.Hooks.Cell(m.From) == nil {
				missing = m.From
			}
			return domicile.Errorf(domicile.EConflict, "cell %s is not served by this process: serve the plan's next deployment (%s, sha256 %s), which declares it, then run the plan", missing, p.To, p.ToSHA256[:12])
		}
		if _, err := dep.Place(m.Jurisdiction, m.To); err != nil {
			return &domicile.Error{Code: domicile.EResidency, Field: "plan", Message: fmt.Sprintf("refused: the residency policy in force does not permit data of %s subjects in cell %s (policy %s: %v)", m.Jurisdiction, m.To, m.Jurisdiction, dep.PermittedCells(m.Jurisdiction))}
		}
	}
	if p.Subjects == 0 {
		return nil
	}
	pending, last, err := r.cfg.Hooks.Notices(ctx, p.NoticePlan)
	if err != nil {
		return err
	}
	if pending > 0 {
		return domicile.Errorf(domicile.EConflict, "refused: %d of the %d notices of change plan %s are not delivered yet; send them (domicile notice send %s) and run again %s after the last is delivered", pending, p.Notices, p.NoticePlan, p.NoticePlan, p.Lead())
	}
	if due := last.Add(p.Lead()); r.cfg.Now().Before(due) {
		return domicile.Errorf(domicile.EConflict, "refused: the notices went out on %s and must precede the move by %s; the migration may start at %s", last.UTC().Format(time.RFC3339), p.Lead(), due.UTC().Format(time.RFC3339))
	}
	return nil
}

// Start checks plan id (Check) and starts running it in the background
// with opts. Starting a running plan again is not an error.
func (r *Runner) Start(ctx context.Context, id string, opts Options) error {
	m, err := r.migration(ctx, id)
	if err != nil {
		return err
	}
	switch m.State {
	case StateDone:
		return domicile.Errorf(domicile.EConflict, "migration %s is finished", id)
	case StateRunning:
		r.spawn(id)
		return nil
	}
	p, err := ParsePlan(m.Plan)
	if err != nil {
		return err
	}
	if err := r.Check(ctx, p); err != nil {
		return err
	}
	m.Options, _ = json.Marshal(opts)
	m.State, m.Started = StateRunning, r.cfg.Now().UTC()
	if err := r.cfg.Store.UpdateMigration(ctx, *m); err != nil {
		return err
	}
	r.spawn(id)
	return nil
}

// Resume restarts, after a restart of the service, every run that was
// under way, and tells each source cell which of its subjects already
// switched away.
func (r *Runner) Resume(ctx context.Context) error {
	ms, err := r.cfg.Store.Migrations(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.State != StateRunning && m.State != StateDone {
			continue
		}
		if err := r.each(ctx, m.ID, func(s domicile.MigrationSubject) error {
			if s.State == domicile.MoveSwitched {
				if c := r.cfg.Hooks.Cell(s.From); c != nil {
					c.MarkMoved(s.Ref, s.To)
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if m.State == StateRunning {
			r.spawn(m.ID)
		}
	}
	return nil
}

// Wait blocks until the run of id (if any in this process) ends or ctx
// is done.
func (r *Runner) Wait(ctx context.Context, id string) error {
	r.mu.Lock()
	ch := r.done[id]
	r.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runner) spawn(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[id] {
		return
	}
	r.running[id] = true
	ch := make(chan struct{})
	r.done[id] = ch
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.running, id)
			r.mu.Unlock()
			close(ch)
		}()
		for r.ctx.Err() == nil {
			err := r.run(r.ctx, id)
			if err == nil {
				return
			}
			var stop *stopError
			if errors.As(err, &stop) {
				r.stop(id, stop.Error())
				return
			}
			if r.ctx.Err() != nil {
				return
			}
			r.cfg.Logger.Warn("migration: step failed; retrying", slog.String("plan", id), slog.Any("err", err))
			select {
			case <-r.ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
}

// stopError stops a run: retrying will not help.
type stopError struct{ err error }

// Permanent marks err as an error that retrying will not cure: a Runner
// that gets it from a Target stops the run (StateStopped) with err as
// its reason instead of retrying the step. A Target returns it when the
// target refuses the caller itself (its TLS, say), which only a change
// of configuration cures; the plan is then run again. Permanent(nil) is
// nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &stopError{err}
}

func (e *stopError) Error() string { return e.err.Error() }
func (e *stopError) Unwrap() error { return e.err }

func (r *Runner) stop(id, reason string) {
	ctx := context.WithoutCancel(r.ctx)
	m, err := r.cfg.Store.Migration(ctx, id)
	if err != nil {
		return
	}
	var o Options
	json.Unmarshal(m.Options, &o)
	o.Reason = reason
	m.Options, _ = json.Marshal(o)
	m.State = StateStopped
	if err := r.cfg.Store.UpdateMigration(ctx, *m); err != nil {
		r.cfg.Logger.Error("migration: cannot record the stop", slog.String("plan", id), slog.Any("err", err))
	}
	r.cfg.Logger.Warn("migration stopped", slog.String("plan", id), slog.String("reason", reason))
}

// each calls fn for every subject of plan id, by key.
func (r *Runner) each(ctx context.Context, id string, fn func(domicile.MigrationSubject) error) error {
	var after domicile.SubjectRef
	for {
		ss, err := r.cfg.Store.MigrationSubjects(ctx, id, after, 1000)
		if err != nil {
			return err
		}
		for _, s := range ss {
			if err := fn(s); err != nil {
				return err
			}
			after = s.Key
		}
		if len(ss) < 1000 {
			return nil
		}
	}
}

// run moves every subject of plan id as far as it can go now, waits for
// the retention periods, and writes the report.
func (r *Runner) run(ctx context.Context, id string) error {
	m, err := r.cfg.Store.Migration(ctx, id)
	if err != nil {
		return err
	}
	p, err := ParsePlan(m.Plan)
	if err != nil {
		return &stopError{err}
	}
	var o Options
	json.Unmarshal(m.Options, &o)
	moves := map[[2]string]Move{}
	for _, mv := range p.Moves {
		moves[[2]string{mv.From, mv.To}] = mv
	}
	var interval time.Duration
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) / o.Rate)
	}
	for {
		var next time.Time
		err := r.each(ctx, id, func(s domicile.MigrationSubject) error {
			if !r.ours(s) {
				return nil
			}
			start := time.Now()
			if s.State == domicile.MovePlanned || s.State == domicile.MoveCopied {
				var err error
				if s, err = r.move(ctx, p, s, moves[[2]string{s.From, s.To}]); err != nil {
					return err
				}
				if d := interval - time.Since(start); d > 0 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(d):
					}
				}
			}
			if s.State == domicile.MoveSwitched {
				due := s.Switched.Add(o.Retention)
				if r.cfg.Now().Before(due) {
					if next.IsZero() || due.Before(next) {
						next = due
					}
					return nil
				}
				return r.shred(ctx, p, s)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if next.IsZero() {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Until(next)+10*time.Millisecond, time.Minute)):
		}
	}
	if r.cfg.Local {
		left := 0
		if err := r.each(ctx, id, func(s domicile.MigrationSubject) error {
			if s.State != domicile.MoveShredded && s.State != domicile.MoveGone {
				left++
			}
			return nil
		}); err != nil {
			return err
		}
		if left > 0 {
			// Another source cell's process still moves its subjects;
			// the last to finish writes the report.
			return nil
		}
		if m, err = r.cfg.Store.Migration(ctx, id); err != nil {
			return err
		}
		if m.State == StateDone {
			return nil
		}
	}
	return r.finish(ctx, m, p, o)
}

// ours reports whether this runner moves subject s: every subject, or
// with Config.Local only those whose source cell it serves.
func (r *Runner) ours(s domicile.MigrationSubject) bool {
	return !r.cfg.Local || r.cfg.Hooks.Cell(s.From) != nil
}

// move copies subject s, checks the digests and switches its home.
func (r *Runner) move(ctx context.Context, p *Plan, s domicile.MigrationSubject, mv Move) (domicile.MigrationSubject, error) {
	src, dst := r.cfg.Hooks.Cell(s.From), r.target(s.To)
	if src == nil || dst == nil {
		return s, fmt.Errorf("cell %s must be served here and cell %s reached", s.From, s.To)
	}
	if _, err := src.SubjectRow(ctx, s.Ref); errors.Is(err, domicile.ErrNotFound) {
		// Erased before it moved: nothing to move.
		s.State, s.Updated = domicile.MoveGone, r.cfg.Now().UTC()
		return s, r.cfg.Store.PutMigrationSubject(ctx, s)
	} else if err != nil {
		return s, err
	}
	// The target's migration key is fetched before the gate is asked, so
	// that a cross-border move whose target cannot be reached (down,
	// refusing the handshake) counts no transfer in the ledger: the gate
	// counts only moves that can then take place.
	var pub []byte
	if s.State == domicile.MovePlanned {
		var err error
		if pub, err = dst.MigrationKey(ctx); err != nil {
			return s, err
		}
	}
	if mv.CrossBorder && s.Transfer == "" {
		tid, err := r.cfg.Hooks.Transfer(ctx, src, s, mv)
		if err != nil {
			if domicile.ErrorCode(err) == domicile.EForbidden {
				return s, &stopError{fmt.Errorf("refused: the move %s -> %s crosses a border (%s -> %s) and the transfer gate refused it: %v", s.From, s.To, mv.FromJurisdiction, mv.ToJurisdiction, err)}
			}
			return s, err
		}
		s.Transfer = tid
		if err := r.cfg.Store.PutMigrationSubject(ctx, s); err != nil {
			return s, err
		}
	}
	if s.State == domicile.MovePlanned {
		var err error
		if s, err = r.copy(ctx, p, s, src, dst, pub); err != nil {
			return s, err
		}
	}
	return r.switchHome(ctx, p, s, src, dst)
}

// copy brings a copy of s, sealed to pub (dst's migration key), into
// dst, replacing a stale one.
func (r *Runner) copy(ctx context.Context, p *Plan, s domicile.MigrationSubject, src *cell.Cell, dst Target, pub []byte) (domicile.MigrationSubject, error) {
	parcel, err := src.MigrateOut(ctx, p.ID, s.Ref, s.To, pub)
	if err != nil {
		return s, err
	}
	note := ""
	if r.cfg.Hooks.Notice != nil {
		if nid, at, ok := r.cfg.Hooks.Notice(ctx, p.NoticePlan, s.Ref); ok {
			note = fmt.Sprintf("notice=%s delivered=%s", nid, at.UTC().Format(time.RFC3339))
		}
	}
	if op := r.cfg.Hooks.Deployment().Cell(s.To); op != nil {
		note = "to-operator=" + op.Operator + "; " + note
	}
	d, idx, err := dst.MigrateIn(ctx, parcel, note)
	if errors.Is(err, cell.ErrStaleCopy) || (err == nil && idx < 0 && s.InIndex < 0) {
		// A stale copy, or one whose migrate-in event this run did not
		// record (killed in between): bring it in again.
		if err := dst.Discard(ctx, p.ID, s.Ref); err != nil {
			return s, err
		}
		d, idx, err = dst.MigrateIn(ctx, parcel, note)
	}
	if err != nil {
		return s, err
	}
	s.State, s.SourceDigest, s.TargetDigest, s.OutIndex = domicile.MoveCopied, parcel.Digest, d, parcel.OutIndex
	if idx >= 0 {
		s.InIndex = idx
	}
	s.Records, s.Objects, s.Bytes, s.Updated = len(parcel.Records), len(parcel.Objects), parcel.Bytes, r.cfg.Now().UTC()
	return s, r.cfg.Store.PutMigrationSubject(ctx, s)
}

// holdWait bounds how long a switch waits for writes under way.
const holdWait = 300 * time.Millisecond

// switchHome holds writes to s at its source, copies it again if it
// changed since the copy, and switches the directory and s's state in
// one transaction.
func (r *Runner) switchHome(ctx context.Context, p *Plan, s domicile.MigrationSubject, src *cell.Cell, dst Target) (domicile.MigrationSubject, error) {
	release, err := src.Hold(ctx, s.Ref, holdWait)
	if err != nil {
		return s, err
	}
	movedTo := ""
	defer func() { release(movedTo) }()
	d, here, err := src.Digest(ctx, s.Plan, s.Ref)
	if err != nil {
		return s, err
	}
	if !here {
		s.State, s.Updated = domicile.MoveGone, r.cfg.Now().UTC()
		return s, r.cfg.Store.PutMigrationSubject(ctx, s)
	}
	if d != s.TargetDigest || s.InIndex < 0 {
		// Written to since the copy: copy again, writes held.
		s.State = domicile.MovePlanned
		pub, err := dst.MigrationKey(ctx)
		if err != nil {
			return s, err
		}
		if s, err = r.copy(ctx, p, s, src, dst, pub); err != nil {
			return s, err
		}
	}
	if s.SourceDigest != s.TargetDigest {
		return s, fmt.Errorf("digests differ after the copy: %s at %s, %s at %s", s.SourceDigest, s.From, s.TargetDigest, s.To)
	}
	s.State, s.Switched, s.Updated = domicile.MoveSwitched, r.cfg.Now().UTC(), r.cfg.Now().UTC()
	if err := r.cfg.Store.SwitchHome(ctx, s); errors.Is(err, domicile.ErrVersionMismatch) {
		// The directory no longer names this registration in the source
		// (erased meanwhile): the copy in the target is discarded.
		if err := dst.Discard(ctx, s.Plan, s.Ref); err != nil {
			return s, err
		}
		s.State = domicile.MoveGone
		return s, r.cfg.Store.PutMigrationSubject(ctx, s)
	} else if err != nil {
		return s, err
	}
	movedTo = s.To
	r.cfg.Hooks.Moved(s.Key, domicile.Home{Cell: s.To, Ref: s.Ref})
	return s, nil
}

// shred destroys the source copy of a switched subject.
func (r *Runner) shred(ctx context.Context, p *Plan, s domicile.MigrationSubject) error {
	src := r.cfg.Hooks.Cell(s.From)
	if src == nil {
		return fmt.Errorf("cell %s is not served here", s.From)
	}
	src.MarkMoved(s.Ref, s.To)
	if err := src.Shred(ctx, p.ID, s.Ref); err != nil {
		return err
	}
	s.State, s.Updated = domicile.MoveShredded, r.cfg.Now().UTC()
	return r.cfg.Store.PutMigrationSubject(ctx, s)
}

// finish writes and signs the report.
func (r *Runner) finish(ctx context.Context, m *domicile.Migration, p *Plan, o Options) error {
	type acc struct {
		c       CellReport
		digests []string
	}
	cells := map[string]*acc{}
	get := func(id, role string) *acc {
		a := cells[role+"/"+id]
		if a == nil {
			a = &acc{c: CellReport{Cell: id, Role: role, Events: []int64{}}}
			if cc := r.cfg.Hooks.Deployment().Cell(id); cc != nil {
				a.c.Operator = cc.Operator
			}
			cells[role+"/"+id] = a
		}
		return a
	}
	var transfers []string
	err := r.each(ctx, p.ID, func(s domicile.MigrationSubject) error {
		if s.State != domicile.MoveShredded {
			return nil
		}
		for _, x := range []struct {
			a      *acc
			digest string
			index  int64
		}{{get(s.From, "source"), s.SourceDigest, s.OutIndex}, {get(s.To, "target"), s.TargetDigest, s.InIndex}} {
			x.a.c.Subjects++
			x.a.c.Records += s.Records
			x.a.c.Objects += s.Objects
			x.a.c.Bytes += s.Bytes
			x.a.digests = append(x.a.digests, x.digest)
			x.a.c.Events = append(x.a.c.Events, x.index)
		}
		get(s.From, "source").c.Shredded++
		if s.Transfer != "" {
			transfers = append(transfers, s.Transfer)
		}
		return nil
	})
	if err != nil {
		return err
	}
	rep := &Report{Plan: p.ID, Deployment: r.cfg.Hooks.Deployment().Name, Started: m.Started, Finished: r.cfg.Now().UTC(),
		Retention: o.Retention.String(), Transfers: transfers}
	if rep.Transfers == nil {
		rep.Transfers = []string{}
	}
	var keys []string
	for k := range cells {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a := cells[k]
		sort.Slice(a.c.Events, func(i, j int) bool { return a.c.Events[i] < a.c.Events[j] })
		a.c.Digest = AggregateDigest(a.digests)
		var max int64 = -1
		if n := len(a.c.Events); n > 0 {
			max = a.c.Events[n-1]
		}
		for {
			lr, err := r.cfg.Hooks.Checkpoint(ctx, a.c.Cell)
			if err != nil {
				return err
			}
			if lr.Size > max {
				a.c.Log = lr
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		rep.Cells = append(rep.Cells, a.c)
	}
	if len(rep.Cells) == 0 {
		rep.Cells = []CellReport{}
	}
	var signed []byte
	if len(rep.Cells) > 0 {
		if signed, err = SignReport(rep, r.cfg.Signer); err != nil {
			return err
		}
	}
	m.Report, m.State, m.Finished = signed, StateDone, rep.Finished
	return r.cfg.Store.UpdateMigration(ctx, *m)
}

// Status is a run's progress.
type Status struct {
	Plan    *Plan   `json:"plan"`
	State   string  `json:"state"`
	Options Options `json:"options"`
	// Subjects per move state (domicile.MovePlanned, ...).
	States   map[string]int `json:"states"`
	Subjects int            `json:"subjects"`
	// Moved counts subjects switched or shredded (or gone); Bytes their
	// sealed bytes.
	Moved   int       `json:"moved"`
	Bytes   int64     `json:"bytes"`
	Started time.Time `json:"started,omitzero"`
	// ETA is the estimated end of the moves (not of the retention), zero
	// when not running or unknown.
	ETA      time.Time `json:"eta,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
	// Rate is subjects moved per second so far.
	Rate float64 `json:"rate"`
}

// Status returns plan id's progress.
func (r *Runner) Status(ctx context.Context, id string) (*Status, error) {
	m, err := r.migration(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := ParsePlan(m.Plan)
	if err != nil {
		return nil, err
	}
	st := &Status{Plan: p, State: m.State, States: map[string]int{}, Started: m.Started, Finished: m.Finished}
	json.Unmarshal(m.Options, &st.Options)
	if err := r.each(ctx, id, func(s domicile.MigrationSubject) error {
		st.States[s.State]++
		st.Subjects++
		if s.State != domicile.MovePlanned && s.State != domicile.MoveCopied {
			st.Moved++
			st.Bytes += s.Bytes
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if !m.Started.IsZero() {
		end := r.cfg.Now()
		if !m.Finished.IsZero() {
			end = m.Finished
		}
		if el := end.Sub(m.Started).Seconds(); el > 0 {
			st.Rate = float64(st.Moved) / el
		}
		if m.State == StateRunning && st.Rate > 0 && st.Moved < st.Subjects {
			st.ETA = r.cfg.Now().Add(time.Duration(float64(st.Subjects-st.Moved) / st.Rate * float64(time.Second))).UTC()
		}
	}
	return st, nil
}

// SignedReport returns the signed report of a finished migration.
func (r *Runner) SignedReport(ctx context.Context, id string) ([]byte, error) {
	m, err := r.migration(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.State != StateDone || len(m.Report) == 0 {
		return nil, domicile.Errorf(domicile.EConflict, "migration %s is %s: its report is written when every subject's source copy is shredded", id, m.State)
	}
	return m.Report, nil
}

// List returns every migration's status line.
func (r *Runner) List(ctx context.Context) ([]domicile.Migration, error) {
	return r.cfg.Store.Migrations(ctx)
}
