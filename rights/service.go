package rights

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"filippo.io/age"

	"domicile"
	"domicile/cell"
	"domicile/i18n"
	"domicile/law"
	"domicile/report"
	"domicile/residency"
	"domicile/tlog"
	"domicile/transfer"
)

// Gate is what the service needs of the transfer gateway: deciding a
// portability abroad, and the consents on record for a subject's copy.
// *transfer.Gateway is one.
type Gate interface {
	Portability(ctx context.Context, a domicile.Actor, c *cell.Cell, s cell.SubjectKey, dest domicile.Jurisdiction, recipient string, fields map[string][]string, cats map[string]domicile.Category) (*transfer.Decision, error)
	ConsentsOf(ctx context.Context, ref domicile.SubjectRef) ([]domicile.Consent, error)
}

// Config configures a Service.
type Config struct {
	Router *residency.Router
	// Gate decides portability abroad and gives consents; without it a
	// portability abroad is refused and copies say consents are not
	// reported.
	Gate Gate
	// Transfers describes the transfers a subject's events name; without
	// it copies say transfers are not reported.
	Transfers report.Transfers
	// Logs returns a cell's running log, for the trail's proofs.
	Logs func(cell string) *tlog.Log
	// Law explains which rules a category's processing rests on.
	Law *law.Engine
	// Calendar counts CN working days; nil means transfer.CN().
	Calendar *transfer.Calendar
	Now      func() time.Time
}

// Service runs rights requests. It is safe for concurrent use.
type Service struct{ cfg Config }

// New returns a service.
func New(cfg Config) *Service {
	if cfg.Calendar == nil {
		cfg.Calendar = transfer.CN()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}
}

// BundlePath is where the copy of request rid of subject id is
// downloaded from.
func BundlePath(id, rid string) string {
	return "/v1/subjects/" + escape(id) + "/requests/" + rid + "/bundle"
}

func escape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func (r *Request) step(t time.Time, st State, role domicile.Role, note string) {
	r.State, r.Updated = st, t
	r.History = append(r.History, Step{Time: t, State: st, Role: role, Note: note})
}

// stored is a request's sealed body: the request without the raw subject
// id (never stored) and without what is computed at each read.
func (r *Request) stored() ([]byte, error) {
	c := *r
	c.Subject, c.Overdue = "", false
	return json.Marshal(&c)
}

// view decodes a stored request for subject id as of now.
func view(cr *cell.Request, id string, now time.Time) (*Request, error) {
	var r Request
	if err := json.Unmarshal(cr.Body, &r); err != nil {
		return nil, domicile.Errorf(domicile.EInternal, "stored request %s is corrupt", cr.ID)
	}
	r.ID, r.Subject, r.Version = cr.ID, id, cr.Version
	r.Overdue = !r.State.Final() && now.After(r.Deadline.Due)
	return &r, nil
}

// Create files a request of subject id for actor a (the subject's own
// token or the app). Requests the service answers at once (access, copy,
// portability, deletion, explanation) are filed already answered:
// completed, or refused with the reason; a correction is filed received,
// for the business to act on. lang is the language of the texts in the
// answer.
func (s *Service) Create(ctx context.Context, a domicile.Actor, id string, in Input, lang i18n.Lang) (*Request, error) {
	dep := s.cfg.Router.Deployment()
	if err := in.Validate(dep); err != nil {
		return nil, err
	}
	c, k, err := s.cfg.Router.LocateFor(ctx, a, id, domicile.ActRequest)
	if err != nil {
		return nil, err
	}
	rid, err := c.NewRequestID()
	if err != nil {
		return nil, err
	}
	if !authorized(a, k) {
		// The cell refuses it, and the refusal is in the trail.
		_, err := c.FileRequest(ctx, a, k, rid, nil)
		return nil, err
	}
	p := i18n.NewPrinter(lang)
	now := s.cfg.Now().UTC()
	req := &Request{ID: rid, Subject: id, Kind: in.Kind, FiledBy: a.Role, Received: now, Ask: in}
	req.step(now, Received, a.Role, "")
	res := "request/" + rid
	switch in.Kind {
	case Access, Explanation:
		inv, err := c.Inventory(ctx, a, k, res, "for "+string(in.Kind)+" request "+rid)
		if err != nil {
			return nil, err
		}
		if in.Kind == Access {
			req.Result = &Result{Inventory: s.inventory(c, id, inv)}
		} else {
			ex, err := s.explain(ctx, p, c, k, inv, now)
			if err != nil {
				return nil, err
			}
			req.Result = &Result{Explanation: ex}
		}
		req.step(now, Completed, a.Role, "")
	case Copy:
		req.Result = &Result{Bundle: BundlePath(id, rid), Encrypted: in.Recipient != ""}
		req.step(now, Completed, a.Role, "")
	case Portability:
		if err := s.portability(ctx, p, a, c, k, req, now); err != nil {
			return nil, err
		}
	}
	filed, err := c.FileRequest(ctx, a, k, rid, func(sub domicile.StoredSubject) (*cell.Request, string, error) {
		req.Deadline = DeadlineFor(p, s.cfg.Calendar, sub.Jurisdiction, now)
		body, err := req.stored()
		if err != nil {
			return nil, "", err
		}
		detail := fmt.Sprintf("%s request %s; due %s", in.Kind, req.State, req.Deadline.Due.Format(time.DateOnly))
		return &cell.Request{Kind: string(req.Kind), State: string(req.State), Received: now, Deadline: req.Deadline.Due, Updated: now, Body: body}, detail, nil
	})
	if err != nil {
		return nil, err
	}
	req.Version = filed.Version
	if in.Kind == Deletion {
		// The erasure destroys the request with everything else of the
		// subject's; the answer is the receipt, kept under its own id.
		rec, err := s.cfg.Router.Erase(ctx, a, id)
		if err != nil {
			return nil, err
		}
		req.step(s.cfg.Now().UTC(), Completed, a.Role, "")
		req.Result = &Result{Receipt: rec}
	}
	req.Overdue = !req.State.Final() && now.After(req.Deadline.Due)
	return req, nil
}

// authorized is the cell's rule for rights requests, applied early so
// that no work is done for an actor the cell will refuse.
func authorized(a domicile.Actor, k cell.SubjectKey) bool {
	return a.Role == domicile.RoleApp || a.Role == domicile.RoleSubject && a.Subject == k.Ref.String()
}

// portability answers a portability request: within the cell's
// jurisdiction it is a copy for the handler; abroad the gate decides it.
func (s *Service) portability(ctx context.Context, p *i18n.Printer, a domicile.Actor, c *cell.Cell, k cell.SubjectKey, req *Request, now time.Time) error {
	to := req.Ask.To
	req.Result = &Result{Bundle: BundlePath(req.Subject, req.ID), Encrypted: req.Ask.Recipient != ""}
	if c.Config().Jurisdiction.Covers(to.Jurisdiction) {
		req.step(now, Completed, a.Role, "")
		return nil
	}
	refuse := func(reason string) {
		req.Result = nil
		req.Reason = reason
		req.step(now, Refused, domicile.RoleSystem, "")
	}
	if s.cfg.Gate == nil {
		refuse(p.T("rights.refused.nogate", to.Name, string(to.Jurisdiction)))
		return nil
	}
	inv, err := c.Inventory(ctx, a, k, "request/"+req.ID, "for portability request "+req.ID+" to "+string(to.Jurisdiction))
	if err != nil {
		return err
	}
	fields, cats := map[string][]string{}, map[string]domicile.Category{}
	dep := s.cfg.Router.Deployment()
	for kind, h := range inv.Kinds {
		fields[kind] = append([]string(nil), h.Fields...)
		for _, f := range h.Fields {
			cats[kind+"."+f] = category(dep, kind, f)
		}
	}
	if inv.Objects > 0 {
		fields[domicile.ObjectKind] = []string{"content"}
		cats[domicile.ObjectKind+".content"] = domicile.Personal
	}
	d, err := s.cfg.Gate.Portability(ctx, a, c, k, to.Jurisdiction, to.Name, fields, cats)
	var refused *transfer.RefusedError
	if errors.As(err, &refused) {
		reason := strings.Join(refused.Decision.Reasons, "; ")
		if len(refused.Decision.Rules) > 0 {
			reason += " (" + strings.Join(refused.Decision.Rules, ", ") + ")"
		}
		refuse(p.T("rights.refused.gate", to.Name, string(to.Jurisdiction), reason))
		return nil
	}
	if err != nil {
		return err
	}
	t := &TransferRef{ID: d.ID, Destination: d.Destination, Recipient: d.Recipient, Law: d.Law, Fields: d.Fields}
	if d.Mechanism != nil {
		t.Mechanism = d.Mechanism.ID
	}
	req.Result.Transfer = t
	req.step(now, Completed, a.Role, "")
	return nil
}

func category(dep *domicile.Deployment, kind, field string) domicile.Category {
	if k := dep.Kind(kind); k != nil {
		if c, ok := k.Fields[field]; ok {
			return c
		}
	}
	return domicile.Personal
}

// inventory turns a cell's inventory into an access request's answer.
func (s *Service) inventory(c *cell.Cell, id string, inv *cell.Inventory) *Inventory {
	cc := c.Config()
	dep := s.cfg.Router.Deployment()
	out := &Inventory{Cell: cc.ID, Operator: cc.Operator, Location: cc.Location, Jurisdiction: cc.Jurisdiction,
		Objects: inv.Objects, ObjectBytes: inv.Bytes, Kinds: []KindView{},
		Statement: "/v1/subjects/" + escape(id) + "/statement"}
	for kind, h := range inv.Kinds {
		v := KindView{Kind: kind, Records: h.Records, Fields: append([]string(nil), h.Fields...), Purposes: []string{}}
		sort.Strings(v.Fields)
		for _, f := range v.Fields {
			if cat := category(dep, kind, f); !slices.Contains(v.Categories, cat) {
				v.Categories = append(v.Categories, cat)
			}
		}
		slices.Sort(v.Categories)
		for _, pu := range dep.Purposes {
			if pu.ReadsKind(kind) {
				v.Purposes = append(v.Purposes, pu.Name)
			}
		}
		out.Kinds = append(out.Kinds, v)
	}
	sort.Slice(out.Kinds, func(i, j int) bool { return out.Kinds[i].Kind < out.Kinds[j].Kind })
	return out
}

// Get returns request rid of subject id: one read in the subject's trail.
func (s *Service) Get(ctx context.Context, a domicile.Actor, id, rid string) (*Request, error) {
	c, k, err := s.cfg.Router.LocateFor(ctx, a, id, domicile.ActRead)
	if err != nil {
		return nil, err
	}
	cr, err := c.GetRequest(ctx, a, k, rid)
	if err != nil {
		return nil, err
	}
	return view(cr, id, s.cfg.Now())
}

// List returns a page of subject id's requests, by id after after.
func (s *Service) List(ctx context.Context, a domicile.Actor, id, after string, limit int) ([]Request, error) {
	c, k, err := s.cfg.Router.LocateFor(ctx, a, id, domicile.ActList)
	if err != nil {
		return nil, err
	}
	crs, err := c.ListRequests(ctx, a, k, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Request, 0, len(crs))
	now := s.cfg.Now()
	for i := range crs {
		r, err := view(&crs[i], id, now)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

// Update moves request rid of subject id on: to in-progress, completed or
// refused (with the reason). Only the app does, acting for the business;
// a final request does not change. One event in the subject's trail.
func (s *Service) Update(ctx context.Context, a domicile.Actor, id, rid string, u Update) (*Request, error) {
	if err := u.Validate(); err != nil {
		return nil, err
	}
	c, k, err := s.cfg.Router.LocateFor(ctx, a, id, domicile.ActRequest)
	if err != nil {
		return nil, err
	}
	var out *Request
	_, err = c.UpdateRequest(ctx, a, k, rid, func(cr *cell.Request) (string, error) {
		if a.Role != domicile.RoleApp {
			return "", domicile.Errorf(domicile.EForbidden, "the app, acting for the business, moves a request on; the subject files and reads it")
		}
		r, err := view(cr, id, s.cfg.Now())
		if err != nil {
			return "", err
		}
		if r.State.Final() {
			return "", &domicile.Error{Code: domicile.EConflict, Field: "state", Message: fmt.Sprintf("request %s is %s already; a final request does not change", rid, r.State)}
		}
		now := s.cfg.Now().UTC()
		r.Reason = u.Reason
		r.step(now, u.State, a.Role, u.Note)
		body, err := r.stored()
		if err != nil {
			return "", err
		}
		cr.State, cr.Updated, cr.Body = string(r.State), now, body
		out = r
		return string(r.Kind) + " request " + string(r.State), nil
	})
	if err != nil {
		return nil, err
	}
	out.Version++
	out.Overdue = !out.State.Final() && s.cfg.Now().After(out.Deadline.Due)
	return out, nil
}

// BundleInfo is what a download says before its first byte.
type BundleInfo struct {
	// Name is the file name: copy-<rid>.zip, or .zip.age when encrypted.
	Name        string
	ContentType string
}

// Bundle writes the copy of request rid (a completed copy or portability
// request) of subject id for actor a, as [BundleFormat]: open calls back
// once the copy's event is durable, before the first byte, and returns
// where to write. Each download is one event in the subject's trail (an
// export, for portability, naming the transfer when the handler is
// abroad). The app takes only a copy encrypted to the subject's key.
func (s *Service) Bundle(ctx context.Context, a domicile.Actor, id, rid string, lang i18n.Lang, open func(BundleInfo) (io.Writer, error)) error {
	c, k, err := s.cfg.Router.LocateFor(ctx, a, id, domicile.ActRead)
	if err != nil {
		return err
	}
	var req *Request
	prepare := func(cr *cell.Request) (*cell.CopyOptions, error) {
		r, err := view(cr, id, s.cfg.Now())
		if err != nil {
			return nil, err
		}
		req = r
		if r.Kind != Copy && r.Kind != Portability {
			return nil, domicile.FieldErrorf("id", "request %s is a %s request; only copy and portability requests have a bundle", rid, r.Kind)
		}
		if r.State != Completed {
			return nil, domicile.Errorf(domicile.EConflict, "request %s is %s; its bundle exists once it is completed", rid, r.State)
		}
		o := &cell.CopyOptions{Sealed: r.Ask.Recipient != "", Detail: "copy for request " + rid}
		if r.Kind == Portability {
			o.Export = true
			o.Detail = fmt.Sprintf("portability of request %s to %s in %s", rid, r.Ask.To.Name, r.Ask.To.Jurisdiction)
			if t := r.Result.Transfer; t != nil {
				o.Fields = t.Fields
				o.Detail += "; transfer " + t.ID + " to " + string(t.Destination) + " under " + t.Law
				if t.Mechanism != "" {
					o.Detail += " (" + t.Mechanism + ")"
				}
			}
		}
		return o, nil
	}
	bw := &copyWriter{s: s, c: c, k: k, lang: lang, open: open, req: func() *Request { return req }}
	err = c.Copy(ctx, a, k, rid, prepare, cell.CopySink{Record: bw.record, Object: bw.object, Events: bw.events})
	if err != nil {
		return err
	}
	return bw.err
}

// copyWriter streams a copy into a bundle as the cell hands it over.
type copyWriter struct {
	s    *Service
	c    *cell.Cell
	k    cell.SubjectKey
	lang i18n.Lang
	open func(BundleInfo) (io.Writer, error)
	req  func() *Request

	bw      *bundleWriter
	enc     io.WriteCloser
	objects []*domicile.Object
	err     error
}

// start opens the output on the first byte.
func (w *copyWriter) start() error {
	if w.bw != nil {
		return nil
	}
	r := w.req()
	info := BundleInfo{Name: "copy-" + r.ID + ".zip", ContentType: "application/zip"}
	if r.Ask.Recipient != "" {
		info.Name += ".age"
		info.ContentType = "application/octet-stream"
	}
	out, err := w.open(info)
	if err != nil {
		return err
	}
	if r.Ask.Recipient != "" {
		rcpt, err := age.ParseX25519Recipient(r.Ask.Recipient)
		if err != nil {
			return err
		}
		if w.enc, err = age.Encrypt(out, rcpt); err != nil {
			return err
		}
		out = w.enc
	}
	w.bw = newBundleWriter(out, w.s.cfg.Now().UTC())
	return nil
}

func (w *copyWriter) record(r *domicile.Record) error {
	if err := w.start(); err != nil {
		return err
	}
	return w.bw.addJSON(recordPath(r.Kind, r.ID), struct {
		Kind    string          `json:"kind"`
		ID      string          `json:"id"`
		Version int64           `json:"version"`
		Updated time.Time       `json:"updated"`
		Data    json.RawMessage `json:"data"`
	}{r.Kind, r.ID, r.Version, r.Updated, r.Data})
}

func (w *copyWriter) object(o *domicile.Object, r io.Reader) error {
	if err := w.start(); err != nil {
		return err
	}
	w.objects = append(w.objects, o)
	return w.bw.add("objects/"+o.Name, r)
}

// Trail is trail.json: the subject's events with what a verifier needs.
type Trail struct {
	Log report.LogRef `json:"log"`
	// Events are proved against Log's checkpoint; Pending are events the
	// checkpoint does not cover yet (none, normally: the checkpoint is
	// signed for the copy).
	Events  []report.EventProof `json:"events"`
	Pending []report.EventProof `json:"pending,omitempty"`
}

func (w *copyWriter) events(evs []domicile.StoredEvent) error {
	if err := w.start(); err != nil {
		return err
	}
	ctx := context.Background()
	r, s := w.req(), w.s
	trail, err := s.trail(ctx, w.c.ID(), evs)
	if err != nil {
		return err
	}
	if err := w.bw.addJSON("trail.json", trail); err != nil {
		return err
	}
	if w.objects == nil {
		w.objects = []*domicile.Object{}
	}
	if err := w.bw.addJSON("objects.json", w.objects); err != nil {
		return err
	}
	consents := any(map[string]string{"reported": "no transfer gate is wired: consents are not reported in this copy"})
	if s.cfg.Gate != nil {
		cs, err := s.cfg.Gate.ConsentsOf(ctx, w.k.Ref)
		if err != nil {
			return err
		}
		if cs == nil {
			cs = []domicile.Consent{}
		}
		consents = cs
	}
	if err := w.bw.addJSON("consents.json", consents); err != nil {
		return err
	}
	transfers := any(map[string]string{"reported": "no transfer ledger is wired: transfers are not reported in this copy"})
	if s.cfg.Transfers != nil {
		ts, err := s.cfg.Transfers.SubjectTransfers(ctx, evs, time.Time{}, s.cfg.Now().Add(time.Hour))
		if err != nil {
			return err
		}
		if ts == nil {
			ts = []report.TransferLine{}
		}
		transfers = ts
	}
	if err := w.bw.addJSON("transfers.json", transfers); err != nil {
		return err
	}
	if err := w.bw.addJSON("request.json", r); err != nil {
		return err
	}
	p := i18n.NewPrinter(i18n.EN)
	zh := i18n.NewPrinter(i18n.ZH)
	readme := p.T("rights.readme", r.ID, r.Subject) + "\n\n" + zh.T("rights.readme", r.ID, r.Subject) + "\n"
	if err := w.bw.add("README.txt", bytes.NewReader([]byte(readme))); err != nil {
		return err
	}
	if err := w.bw.finish(Manifest{Request: r.ID, Kind: r.Kind, Subject: r.Subject, Cell: w.c.ID(), Created: w.bw.created}); err != nil {
		return err
	}
	if w.enc != nil {
		return w.enc.Close()
	}
	return nil
}

// trail proves each of a subject's events against a checkpoint signed
// now, which covers them all.
func (s *Service) trail(ctx context.Context, cellID string, evs []domicile.StoredEvent) (*Trail, error) {
	t := &Trail{Events: []report.EventProof{}}
	var l *tlog.Log
	if s.cfg.Logs != nil {
		l = s.cfg.Logs(cellID)
	}
	if l == nil {
		return nil, domicile.Errorf(domicile.EUnavailable, "no log for cell %s", cellID)
	}
	head, err := l.Latest(ctx)
	if err != nil {
		return nil, err
	}
	t.Log = report.LogRef{Cell: cellID, Origin: l.Origin(), VerifierKey: l.VerifierKey(), URL: "/log/" + cellID + "/", Checkpoint: string(head.Signed), Size: head.Size}
	for _, e := range evs {
		if e.Committed == nil {
			continue
		}
		var ev domicile.Event
		if err := json.Unmarshal(e.Committed, &ev); err != nil {
			continue
		}
		ep := report.EventProof{Index: e.Index, Leaf: string(e.Leaf), Salt: e.Salt, Committed: string(e.Committed), Event: ev, Proof: []string{}}
		if e.Index >= head.Size {
			t.Pending = append(t.Pending, ep)
			continue
		}
		proof, err := l.ProveInclusion(ctx, e.Index, head.Size)
		if err != nil {
			return nil, err
		}
		for _, h := range proof {
			ep.Proof = append(ep.Proof, base64.StdEncoding.EncodeToString(h[:]))
		}
		t.Events = append(t.Events, ep)
	}
	return t, nil
}

// Receipt returns the erasure receipt with id, from whichever cell keeps
// it. It needs no token: a receipt names no one, and its id is a random
// capability given to the person once.
func (s *Service) Receipt(ctx context.Context, id string) (*domicile.ErasureReceipt, error) {
	h, ok := strings.CutPrefix(id, "rcp_")
	if b, err := hex.DecodeString(h); !ok || err != nil || len(b) != 16 {
		return nil, domicile.FieldErrorf("id", "a receipt id is rcp_ and 32 hex digits")
	}
	for _, c := range s.cfg.Router.Cells() {
		r, err := c.Receipt(ctx, id)
		if errors.Is(err, domicile.ErrNotFound) {
			continue
		}
		return r, err
	}
	return nil, domicile.Errorf(domicile.ENotFound, "no receipt %s", id)
}
