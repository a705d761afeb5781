// Package authority runs the workflow for requests from authorities:
// record a request (who asks, domestic or foreign, legal basis, reference,
// scope), review it, and decide its outcome: disclosed, partly disclosed,
// refused, or referred to the PRC competent authority, as DSL Art. 36 and
// PIPL Art. 41 require for foreign requests for data stored in mainland
// China.
//
// A disclosure is never a side channel: it is performed by an actor of
// role authority through the subject's cell, so every record read is
// logged like any other access. When a request is decided, each subject
// concerned gets a notice, and the cell's log carries, in that subject's
// trail, a commitment to it (HMAC-SHA256 under a fresh salt, as leaf
// commitments are made). Where the law defers telling the subject, the
// notice and the salt stay in the request until the deferral ends; then
// the subject's statement shows the notice with the salt, and anyone can
// check it against the commitment that the log has held since the
// decision.
package authority

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"domicile"
	"domicile/cell"
	"domicile/i18n"
	"domicile/law"
	"domicile/leaf"
	"domicile/report"
	"domicile/residency"
)

// Statuses of a request.
const (
	StatusRecorded        = "recorded"
	StatusUnderReview     = "under-review"
	StatusReferred        = "referred"
	StatusDisclosed       = "disclosed"
	StatusPartlyDisclosed = "partly-disclosed"
	StatusRefused         = "refused"
)

// Kinds of requesting authority. The first four are the PRC security
// organs the law engine knows (fact prc_authority_request).
var Kinds = []string{"public_security", "state_security", "intelligence", "counter_terrorism", "court", "law_enforcement", "regulator", "other"}

// Request is an authority request and everything done about it.
type Request struct {
	ID           string                `json:"id"`
	Authority    string                `json:"authority"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Kind         string                `json:"kind"`
	LegalBasis   string                `json:"legal_basis"`
	Reference    string                `json:"reference"`
	// Foreign is true when the authority is outside the jurisdiction of
	// the cell holding the data.
	Foreign  bool      `json:"foreign"`
	Cell     string    `json:"cell"`
	Subjects []string  `json:"subjects"` // subject references (hex), never raw ids
	Kinds    []string  `json:"kinds"`    // record kinds in scope; empty: all
	Received time.Time `json:"received"`
	Status   string    `json:"status"`
	// Mechanism, Rules and Obligations are the law engine's decision on
	// the request as recorded.
	Mechanism   string   `json:"mechanism,omitempty"`
	Rules       []string `json:"rules"`
	Obligations []string `json:"obligations"`
	// PRCApproval is the reference of the PRC competent authority's
	// approval of a foreign request.
	PRCApproval string       `json:"prc_approval,omitempty"`
	DeferUntil  *time.Time   `json:"defer_until,omitempty"`
	History     []Step       `json:"history"`
	Disclosures []Disclosure `json:"disclosures"`
	Notices     []Notice     `json:"notices"`
}

// Step is one change of a request's status.
type Step struct {
	Time   time.Time `json:"time"`
	Status string    `json:"status"`
	Note   string    `json:"note,omitempty"`
}

// Disclosure is one resource disclosed.
type Disclosure struct {
	Time     time.Time `json:"time"`
	Subject  string    `json:"subject"`
	Resource string    `json:"resource"`
}

// Notice is the notice to one subject and its commitment in the log.
type Notice struct {
	Subject    string `json:"subject"`
	Committed  []byte `json:"committed"`
	Salt       []byte `json:"salt"`
	Commitment string `json:"commitment"`
	LeafIndex  int64  `json:"leaf_index"`
}

// NoticeBody is what a notice commits to (its canonical JSON).
type NoticeBody struct {
	Request string                       `json:"request"`
	Subject string                       `json:"subject"`
	Outcome string                       `json:"outcome"`
	Texts   map[string]report.NoticeText `json:"texts"`
}

// Store keeps requests durably. Implementations are safe for concurrent use.
type Store interface {
	// Put inserts or replaces a request.
	Put(ctx context.Context, r *Request) error
	// Get returns a request, or domicile.ErrNotFound.
	Get(ctx context.Context, id string) (*Request, error)
	// List returns every request, oldest first.
	List(ctx context.Context) ([]*Request, error)
}

// Config configures a Desk.
type Config struct {
	Store  Store
	Router *residency.Router
	Law    *law.Engine
	Now    func() time.Time
	Rand   io.Reader
}

// Desk runs the workflow. It is safe for concurrent use.
type Desk struct {
	cfg Config
	// mu serializes changes to requests.
	mu sync.Mutex
}

// New returns a desk.
func New(cfg Config) *Desk {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Desk{cfg: cfg}
}

// NewRequest is a request as it arrives.
type NewRequest struct {
	Authority    string                `json:"authority"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Kind         string                `json:"kind"`
	LegalBasis   string                `json:"legal_basis"`
	Reference    string                `json:"reference"`
	// Subjects are the subject ids the request names; they are kept only
	// as references.
	Subjects []string `json:"subjects"`
	Kinds    []string `json:"kinds,omitempty"`
}

// Validate checks a new request.
func (n *NewRequest) Validate() error {
	if n.Authority == "" || len(n.Authority) > 200 {
		return domicile.FieldErrorf("authority", "must be 1 to 200 bytes")
	}
	if _, err := domicile.ParseJurisdiction(string(n.Jurisdiction)); err != nil {
		return domicile.FieldErrorf("jurisdiction", "%v", err)
	}
	if !contains(Kinds, n.Kind) {
		return domicile.FieldErrorf("kind", "must be one of %v", Kinds)
	}
	if n.LegalBasis == "" || len(n.LegalBasis) > 500 {
		return domicile.FieldErrorf("legal_basis", "must be 1 to 500 bytes")
	}
	if err := domicile.ValidateID("reference", n.Reference); err != nil || len(n.Reference) > 128 || containsSpace(n.Reference) {
		return domicile.FieldErrorf("reference", "must be 1 to 128 printable bytes without spaces")
	}
	if len(n.Subjects) == 0 || len(n.Subjects) > 1000 {
		return domicile.FieldErrorf("subjects", "must name 1 to 1000 subjects")
	}
	return nil
}

func containsSpace(s string) bool {
	for _, r := range s {
		if r == ' ' {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (d *Desk) newID() (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(d.cfg.Rand, b[:]); err != nil {
		return "", err
	}
	return "ar-" + hex.EncodeToString(b[:]), nil
}

// Record records a request and the law engine's decision on it. Every
// subject it names must live in one cell.
func (d *Desk) Record(ctx context.Context, n NewRequest) (*Request, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	r := &Request{Authority: n.Authority, Jurisdiction: n.Jurisdiction, Kind: n.Kind, LegalBasis: n.LegalBasis,
		Reference: n.Reference, Kinds: n.Kinds, Received: d.cfg.Now().UTC(), Status: StatusRecorded,
		Rules: []string{}, Obligations: []string{}, Disclosures: []Disclosure{}, Notices: []Notice{}}
	if r.Kinds == nil {
		r.Kinds = []string{}
	}
	for _, id := range n.Subjects {
		c, k, err := d.cfg.Router.Locate(ctx, id)
		if err != nil {
			return nil, domicile.FieldErrorf("subjects", "subject %q: %v", truncate(id, 32), err)
		}
		if r.Cell != "" && r.Cell != c.ID() {
			return nil, domicile.FieldErrorf("subjects", "all subjects of one request must live in one cell; record one request per cell")
		}
		r.Cell = c.ID()
		if !contains(r.Subjects, k.Ref.String()) {
			r.Subjects = append(r.Subjects, k.Ref.String())
		}
	}
	cc := d.cfg.Router.CellByID(r.Cell).Config()
	r.Foreign = !cc.Jurisdiction.Covers(r.Jurisdiction)
	d.decideLaw(r, cc.Jurisdiction)
	id, err := d.newID()
	if err != nil {
		return nil, err
	}
	r.ID = id
	r.History = []Step{{Time: r.Received, Status: StatusRecorded}}
	if err := d.cfg.Store.Put(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// decideLaw asks the law engine what the request triggers.
func (d *Desk) decideLaw(r *Request, cellJ domicile.Jurisdiction) {
	if d.cfg.Law == nil {
		return
	}
	src := string(cellJ)
	if cellJ.InEU() {
		src = "EU"
	}
	facts := law.Facts{"source_jurisdiction": src, "foreign_authority_request": r.Foreign, "prc_authority_approved": r.PRCApproval != ""}
	if src != "CN" {
		facts["processor_in_prc"] = false
	}
	if !r.Foreign && src == "CN" && contains(Kinds[:4], r.Kind) {
		facts["prc_authority_request"] = r.Kind
	}
	rep, err := d.cfg.Law.Decide(facts, d.cfg.Now())
	if err != nil {
		return
	}
	r.Mechanism = ""
	if rep.Mechanism != nil {
		r.Mechanism = *rep.Mechanism
	}
	r.Rules, r.Obligations = []string{}, []string{}
	for _, f := range rep.Findings {
		for _, o := range f.Obligations {
			if o == "route_via_prc_authority" || o == "cooperate_with_prc_authority" || o == "provide_tech_interface_decryption" {
				r.Rules = append(r.Rules, f.Rule)
				if !contains(r.Obligations, o) {
					r.Obligations = append(r.Obligations, o)
				}
				break
			}
		}
	}
	if src == "EU" && r.Foreign {
		for _, f := range rep.Findings {
			if f.Rule == "EU.GDPR.48" {
				r.Rules = append(r.Rules, f.Rule)
			}
		}
	}
	sort.Strings(r.Rules)
}

// Get returns a request.
func (d *Desk) Get(ctx context.Context, id string) (*Request, error) {
	r, err := d.cfg.Store.Get(ctx, id)
	if errors.Is(err, domicile.ErrNotFound) {
		return nil, domicile.Errorf(domicile.ENotFound, "no authority request %q", truncate(id, 32))
	}
	return r, err
}

// List returns every request.
func (d *Desk) List(ctx context.Context) ([]*Request, error) { return d.cfg.Store.List(ctx) }

// Review puts a request under review with a note.
func (d *Desk) Review(ctx context.Context, id, note string) (*Request, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if final(r.Status) {
		return nil, domicile.Errorf(domicile.EConflict, "request %s is %s already", r.ID, r.Status)
	}
	r.Status = StatusUnderReview
	r.History = append(r.History, Step{Time: d.cfg.Now().UTC(), Status: r.Status, Note: note})
	return r, d.cfg.Store.Put(ctx, r)
}

func final(s string) bool {
	return s == StatusDisclosed || s == StatusPartlyDisclosed || s == StatusRefused
}

// Outcome is a decision on a request.
type Outcome struct {
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
	// PRCApproval is the reference of the PRC competent authority's
	// approval; a foreign request for data in a CN cell can be disclosed
	// only with one.
	PRCApproval string `json:"prc_approval,omitempty"`
	// Kinds narrows the scope of a partial disclosure.
	Kinds []string `json:"kinds,omitempty"`
	// DeferNoticeUntil is the date until which the law defers telling
	// the subjects; nil tells them at once.
	DeferNoticeUntil *time.Time `json:"defer_notice_until,omitempty"`
}

// Decide records an outcome. A final outcome (disclosed, partly
// disclosed, refused) writes each subject's notice and logs its
// commitment in the subject's trail now.
func (d *Desk) Decide(ctx context.Context, id string, o Outcome) (*Request, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if final(r.Status) {
		return nil, domicile.Errorf(domicile.EConflict, "request %s is %s already", r.ID, r.Status)
	}
	c := d.cfg.Router.CellByID(r.Cell)
	if c == nil {
		return nil, domicile.Errorf(domicile.EUnavailable, "cell %s is not served by this process", r.Cell)
	}
	cc := c.Config()
	switch o.Status {
	case StatusReferred, StatusRefused:
	case StatusDisclosed, StatusPartlyDisclosed:
		if r.Foreign && cc.Jurisdiction == "CN" && o.PRCApproval == "" {
			return nil, &domicile.Error{Code: domicile.EConflict, Field: "prc_approval",
				Message: "a foreign request for data stored in mainland China may be answered only with the approval of the PRC competent authority (CN.PIPL.41, CN.DSL.36, CN.ICJA.4); refer it, or give the approval's reference"}
		}
	default:
		return nil, domicile.FieldErrorf("status", "must be one of referred, disclosed, partly-disclosed, refused")
	}
	now := d.cfg.Now().UTC()
	if o.PRCApproval != "" {
		r.PRCApproval = o.PRCApproval
		d.decideLaw(r, cc.Jurisdiction)
	}
	if o.Status == StatusPartlyDisclosed && len(o.Kinds) > 0 {
		r.Kinds = o.Kinds
	}
	if o.DeferNoticeUntil != nil {
		if !o.DeferNoticeUntil.After(now) {
			return nil, domicile.FieldErrorf("defer_notice_until", "must be in the future")
		}
		t := o.DeferNoticeUntil.UTC()
		r.DeferUntil = &t
	}
	r.Status = o.Status
	r.History = append(r.History, Step{Time: now, Status: r.Status, Note: o.Note})
	if final(r.Status) {
		for _, ref := range r.Subjects {
			n, err := d.commitNotice(ctx, c, r, ref)
			if err != nil {
				return nil, err
			}
			r.Notices = append(r.Notices, *n)
		}
	}
	return r, d.cfg.Store.Put(ctx, r)
}

// system is the actor of the service's own log entries.
var system = domicile.Actor{Role: domicile.RoleSystem}

// commitNotice writes the notice of one subject and logs its commitment.
func (d *Desk) commitNotice(ctx context.Context, c *cell.Cell, r *Request, refHex string) (*Notice, error) {
	ref, err := domicile.ParseSubjectRef(refHex)
	if err != nil {
		return nil, err
	}
	body := NoticeBody{Request: r.ID, Subject: refHex, Outcome: r.Status, Texts: map[string]report.NoticeText{}}
	for _, l := range i18n.Langs {
		p := i18n.NewPrinter(l)
		key := "authority.notice." + r.Status
		kinds := p.T("authority.kinds.all")
		if len(r.Kinds) > 0 {
			kinds = strings.Join(r.Kinds, ", ")
		}
		text := p.T(key, r.Authority, string(r.Jurisdiction), r.Reference, r.Received.Format("2006-01-02"), kinds)
		if r.Foreign && r.PRCApproval != "" {
			text += "\n\n" + p.T("authority.notice.approval", r.PRCApproval)
		}
		if r.DeferUntil != nil {
			text += "\n\n" + p.T("authority.notice.deferred", r.DeferUntil.Format("2006-01-02"))
		}
		body.Texts[string(l)] = report.NoticeText{Title: p.T("authority.notice.title"), Body: text}
	}
	committed, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	salt, err := leaf.NewSalt(d.cfg.Rand)
	if err != nil {
		return nil, err
	}
	sum := leaf.Commit(salt, committed)
	commitment := hex.EncodeToString(sum[:])
	detail := "commitment=" + commitment
	if r.DeferUntil != nil {
		detail = "deferred-until=" + r.DeferUntil.Format(time.RFC3339) + " " + detail
	}
	le, err := c.Note(ctx, system, cell.SubjectKey{Ref: ref}, domicile.ActNotice, "authority-notice/"+r.ID, detail)
	if err != nil {
		return nil, err
	}
	return &Notice{Subject: refHex, Committed: committed, Salt: salt, Commitment: commitment, LeafIndex: le.Index}, nil
}

// Package is what a disclosure hands over.
type Package struct {
	Request string            `json:"request"`
	Records []domicile.Record `json:"records"`
}

// Disclose performs a decided disclosure: actor a, of role authority
// with the request's reference as its justification, reads the records in
// scope through the subjects' cell, so that each read is logged. For a
// foreign request for data in a CN cell the actor must act from CN: the
// PRC competent authority receives the data and passes it on.
func (d *Desk) Disclose(ctx context.Context, a domicile.Actor, id string) (*Package, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, err := d.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case a.Role != domicile.RoleAuthority:
		return nil, domicile.Errorf(domicile.EForbidden, "a disclosure is made to an authority token")
	case a.Reference != r.Reference:
		return nil, domicile.Errorf(domicile.EForbidden, "the justification must name the request's reference %q", r.Reference)
	case r.Status != StatusDisclosed && r.Status != StatusPartlyDisclosed:
		return nil, domicile.Errorf(domicile.EConflict, "request %s is %s, not decided for disclosure", r.ID, r.Status)
	}
	c := d.cfg.Router.CellByID(r.Cell)
	if c == nil {
		return nil, domicile.Errorf(domicile.EUnavailable, "cell %s is not served by this process", r.Cell)
	}
	if r.Foreign && c.Config().Jurisdiction == "CN" && a.Jurisdiction != "CN" {
		return nil, domicile.Errorf(domicile.EForbidden, "data of a foreign request is provided through the PRC competent authority: the authority token must act from CN")
	}
	pkg := &Package{Request: r.ID, Records: []domicile.Record{}}
	for _, refHex := range r.Subjects {
		ref, err := domicile.ParseSubjectRef(refHex)
		if err != nil {
			return nil, err
		}
		// Each record is read through the cell as the authority, so that
		// each disclosed record is one logged read in the subject's trail.
		err = c.Disclose(ctx, a, cell.SubjectKey{Ref: ref}, r.Kinds, func(rec *domicile.Record) error {
			pkg.Records = append(pkg.Records, *rec)
			r.Disclosures = append(r.Disclosures, Disclosure{Time: d.cfg.Now().UTC(), Subject: refHex, Resource: "record/" + rec.Kind + "/" + rec.ID})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if err := d.cfg.Store.Put(ctx, r); err != nil {
		return nil, fmt.Errorf("authority: record disclosure: %w", err)
	}
	return pkg, nil
}

// SubjectLines returns the requests concerning subject ref as its
// statement may show them at now: those with a notice for the subject.
// A request whose notice is still deferred is returned with its
// DeferUntil set, so the statement hides it and what it did.
func (d *Desk) SubjectLines(ctx context.Context, ref domicile.SubjectRef) ([]report.AuthorityLine, error) {
	all, err := d.cfg.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []report.AuthorityLine
	for _, r := range all {
		if !contains(r.Subjects, ref.String()) {
			continue
		}
		line := report.AuthorityLine{Request: r.ID, Authority: r.Authority, Jurisdiction: r.Jurisdiction, Foreign: r.Foreign,
			Kind: r.Kind, LegalBasis: r.LegalBasis, Reference: r.Reference, Received: r.Received, Outcome: r.Status,
			Rules: r.Rules, DeferUntil: r.DeferUntil}
		found := false
		for _, n := range r.Notices {
			if n.Subject != ref.String() {
				continue
			}
			found = true
			var body NoticeBody
			if err := json.Unmarshal(n.Committed, &body); err == nil {
				line.Texts = body.Texts
			}
			line.Opening = &report.Opening{Committed: string(n.Committed), Salt: n.Salt, Commitment: n.Commitment, Event: report.EventProof{Index: n.LeafIndex}}
		}
		if !found {
			// Undecided: no notice yet. Hide what it did until it is decided.
			far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
			line.DeferUntil = &far
		}
		out = append(out, line)
	}
	return out, nil
}

// Lines returns every request as the transparency report counts them.
func (d *Desk) Lines(ctx context.Context) ([]report.AuthorityLine, error) {
	all, err := d.cfg.Store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]report.AuthorityLine, 0, len(all))
	for _, r := range all {
		out = append(out, report.AuthorityLine{Request: r.ID, Authority: r.Authority, Jurisdiction: r.Jurisdiction, Foreign: r.Foreign,
			Kind: r.Kind, Reference: r.Reference, Received: r.Received, Outcome: r.Status, Rules: r.Rules})
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
