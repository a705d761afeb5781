package report

import (
	"sort"
	"strings"
	"time"

	"domicile"
	"domicile/cell"
	"domicile/figures"
	"domicile/i18n"
	"domicile/law"
)

// Statement is a subject's data statement: where their data is, who can
// reach it, every access to it in a period with proofs, transfers,
// consents, notices, their rights and whom to contact.
type Statement struct {
	Lang      i18n.Lang `json:"lang"`
	Generated time.Time `json:"generated"`
	Period    Period    `json:"period"`
	// SubjectRef is the subject's pseudonymous reference, as the log's
	// events name it.
	SubjectRef   string                `json:"subject_ref"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Registered   time.Time             `json:"registered"`
	Home         Place                 `json:"home"`
	Holdings     []Holding             `json:"holdings"`
	Keys         Custody               `json:"keys"`
	Reach        []ReachLine           `json:"reach"`
	Accesses     []EventProof          `json:"accesses"`
	Log          LogRef                `json:"log"`
	// TransfersReported is false when no transfer gateway reports to this
	// statement; Transfers is then empty. TransferEvents counts the
	// subject's transfer events in the period (figures.TransferEvent: its
	// data left in an export bundle or a recorded transfer).
	TransfersReported bool           `json:"transfers_reported"`
	Transfers         []TransferLine `json:"transfers"`
	TransferEvents    int            `json:"transfer_events"`
	// RemoteReads are the reads of the subject's data from outside its
	// cell's jurisdiction in the period (each one a transfer abroad that
	// the gate allowed), with what each withheld; they are among
	// Accesses too.
	RemoteReads []EventProof    `json:"remote_reads"`
	Consents    []EventProof    `json:"consents"`
	Notices     []NoticeLine    `json:"notices"`
	Authority   []AuthorityLine `json:"authority_requests"`
	Changes     []ChangeLine    `json:"changes"`
	Rights      []Right         `json:"rights"`
	Contact     Contact         `json:"contact"`
	Notes       []string        `json:"notes"`
}

// Place is where a cell is and who runs it.
type Place struct {
	Cell         string                `json:"cell"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Location     string                `json:"location"`
	Operator     string                `json:"operator"`
}

// Holding is what a subject holds of one kind: records of a kind, or
// objects (Kind "objects").
type Holding struct {
	Kind       string              `json:"kind"`
	Count      int                 `json:"count"`
	Bytes      int64               `json:"bytes,omitempty"`
	Categories []domicile.Category `json:"categories"`
	Sensitive  bool                `json:"sensitive"`
	Cell       string              `json:"cell"`
}

// Right is one right of the subject and how to exercise it.
type Right struct {
	Name    string `json:"name"`
	Article string `json:"article"`
	How     string `json:"how"`
}

// Contact is whom a subject writes to.
type Contact struct {
	Entity  string `json:"entity"`
	Contact string `json:"contact"`
}

// StatementInput is everything a statement is built from. Gather fills it
// from a running deployment; tests fill it with fixed demo data.
type StatementInput struct {
	Now          time.Time
	Period       Period
	Deployment   *domicile.Deployment
	Cell         domicile.CellConfig
	SubjectID    string
	SubjectRef   string
	Jurisdiction domicile.Jurisdiction
	Registered   time.Time
	Records      []domicile.StoredRecord
	Objects      []domicile.StoredObject
	// Events are the subject's events, oldest first, with proofs.
	Events    []EventProof
	Log       LogRef
	Transfers []TransferLine
	// TransfersReported is whether a transfer gateway supplied Transfers.
	TransfersReported bool
	Notices           []NoticeLine
	Authority         []AuthorityLine
	Changes           []ChangeLine
	Law               *law.Engine
}

// Deferred reports whether a's notice is still deferred at now.
func (a AuthorityLine) Deferred(now time.Time) bool {
	return a.DeferUntil != nil && now.Before(*a.DeferUntil)
}

// BuildStatement builds the statement in the printer's language. It hides
// what an authority request still under deferred notice did (its
// disclosure events and the commitment event), and only that.
func BuildStatement(p *i18n.Printer, in StatementInput) *Statement {
	dep := in.Deployment
	decl := dep.Declarations
	s := &Statement{
		Lang: p.Lang(), Generated: in.Now.UTC(), Period: in.Period,
		SubjectRef: in.SubjectRef, Jurisdiction: in.Jurisdiction, Registered: in.Registered,
		Home:              Place{Cell: in.Cell.ID, Jurisdiction: in.Cell.Jurisdiction, Location: in.Cell.Location, Operator: in.Cell.Operator},
		Keys:              KeyCustody(p, in.Cell, decl.Entity),
		Reach:             Reach(p, in.Law, in.Cell, decl.Entity, in.Now),
		Log:               in.Log,
		TransfersReported: in.TransfersReported,
		Holdings:          []Holding{}, Accesses: []EventProof{}, Transfers: []TransferLine{}, RemoteReads: []EventProof{},
		Consents: []EventProof{}, Notices: []NoticeLine{}, Authority: []AuthorityLine{}, Changes: []ChangeLine{},
		Contact: Contact{Entity: decl.Entity, Contact: decl.Contact},
	}
	// Holdings by kind.
	byKind := map[string]*Holding{}
	var kinds []string
	for _, r := range in.Records {
		h := byKind[r.Kind]
		if h == nil {
			h = &Holding{Kind: r.Kind, Cell: in.Cell.ID, Categories: []domicile.Category{}}
			byKind[r.Kind] = h
			kinds = append(kinds, r.Kind)
		}
		h.Count++
		if k := dep.Kind(r.Kind); k != nil {
			for _, c := range k.Categories(r.Fields) {
				if !containsCat(h.Categories, c) {
					h.Categories = append(h.Categories, c)
				}
			}
		}
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		h := byKind[k]
		sort.Slice(h.Categories, func(i, j int) bool { return h.Categories[i] < h.Categories[j] })
		for _, c := range h.Categories {
			h.Sensitive = h.Sensitive || c.Sensitive()
		}
		s.Holdings = append(s.Holdings, *h)
	}
	if len(in.Objects) > 0 {
		h := Holding{Kind: "objects", Cell: in.Cell.ID, Categories: []domicile.Category{domicile.Personal}}
		for _, o := range in.Objects {
			h.Count++
			h.Bytes += o.Size
		}
		s.Holdings = append(s.Holdings, h)
	}
	// Authority requests: hide the deferred ones and what they did.
	hiddenRef := map[string]bool{}
	hiddenRes := map[string]bool{}
	for _, a := range in.Authority {
		if a.Deferred(in.Now) {
			hiddenRef[a.Reference] = true
			hiddenRes["authority-notice/"+a.Request] = true
			continue
		}
		if t, ok := a.Texts[string(p.Lang())]; ok {
			a.Notice = &NoticeText{Title: t.Title, Body: t.Body}
		}
		if a.Opening != nil {
			o := *a.Opening
			for _, e := range in.Events {
				if e.Index == o.Event.Index {
					o.Event = e
				}
			}
			a.Opening = &o
		}
		s.Authority = append(s.Authority, a)
	}
	for _, e := range in.Events {
		ev := e.Event
		if ev.Role == domicile.RoleAuthority && hiddenRef[ev.Reference] {
			continue
		}
		if hiddenRes[ev.Resource] {
			continue
		}
		// The statement counts what the event's leaf says, as the
		// transparency report does (figures).
		l := cell.LeafOf(ev)
		if !figures.InPeriod(l, in.Period.From, in.Period.To) {
			continue
		}
		if ev.Action == domicile.ActConsent {
			s.Consents = append(s.Consents, e)
		}
		if figures.TransferEvent(l) {
			s.TransferEvents++
		}
		if figures.RemoteRead(l) {
			s.RemoteReads = append(s.RemoteReads, e)
		}
		s.Accesses = append(s.Accesses, e)
	}
	for _, t := range in.Transfers {
		if in.Period.Contains(t.Time) {
			s.Transfers = append(s.Transfers, t)
		}
	}
	for _, n := range in.Notices {
		if n.Texts != nil {
			if t, ok := n.Texts[string(p.Lang())]; ok {
				n.Title, n.Body = t.Title, t.Body
			}
		}
		s.Notices = append(s.Notices, n)
	}
	for _, c := range in.Changes {
		if c.Cell == in.Cell.ID {
			s.Changes = append(s.Changes, c)
		}
	}
	s.Rights = Rights(p, in.Jurisdiction, decl.Contact, in.SubjectID)
	s.Notes = []string{p.T("statement.note.deferral"), p.T("statement.note.keys")}
	if !s.TransfersReported {
		s.Notes = append(s.Notes, p.T("statement.note.transfers-unreported"))
	}
	return s
}

func containsCat(list []domicile.Category, c domicile.Category) bool {
	for _, x := range list {
		if x == c {
			return true
		}
	}
	return false
}

// Rights lists a subject's rights under the law of its home jurisdiction
// and how to exercise each (PIPL Arts. 44-50 for mainland China).
func Rights(p *i18n.Printer, j domicile.Jurisdiction, contact, subjectID string) []Right {
	if contact == "" {
		contact = p.T("contact.unset")
	}
	path := "/v1/subjects/" + subjectID
	type r struct{ key, article, how string }
	var list []r
	switch {
	case j == "CN":
		list = []r{
			{"right.know", "PIPL Art. 44", "right.how.contact"},
			{"right.access", "PIPL Art. 45", "right.how.request"},
			{"right.portability", "PIPL Art. 45(3)", "right.how.request"},
			{"right.correction", "PIPL Art. 46", "right.how.request"},
			{"right.deletion", "PIPL Art. 47", "right.how.request"},
			{"right.explanation", "PIPL Art. 48", "right.how.request"},
			{"right.withdraw", "PIPL Art. 15", "right.how.contact"},
			{"right.deceased", "PIPL Art. 49", "right.how.contact"},
			{"right.complaint", "PIPL Art. 50", "right.how.complaint"},
		}
	case j.InEU():
		list = []r{
			{"right.access", "GDPR Art. 15", "right.how.request"},
			{"right.correction", "GDPR Art. 16", "right.how.request"},
			{"right.deletion", "GDPR Art. 17", "right.how.request"},
			{"right.portability", "GDPR Art. 20", "right.how.request"},
			{"right.withdraw", "GDPR Art. 7(3)", "right.how.contact"},
			{"right.complaint", "GDPR Art. 77", "right.how.complaint"},
		}
	default:
		list = []r{
			{"right.access", "", "right.how.request"},
			{"right.correction", "", "right.how.request"},
			{"right.deletion", "", "right.how.request"},
		}
	}
	out := make([]Right, 0, len(list))
	for _, x := range list {
		how := p.T(x.how, contact)
		switch x.how {
		case "right.how.request":
			how = p.T(x.how, "POST "+path+`/requests {"kind": "`+requestKind[x.key]+`"}`, contact)
		}
		out = append(out, Right{Name: p.T(x.key), Article: x.article, How: how})
	}
	return out
}

// requestKind is the rights request (doc/rights.md) that exercises a
// right.
var requestKind = map[string]string{
	"right.access": "access", "right.portability": "portability", "right.correction": "correction",
	"right.deletion": "deletion", "right.explanation": "explanation",
}

// actionText is an event's action in words.
func actionText(p *i18n.Printer, e domicile.Event) string {
	key := "action." + string(e.Action)
	if i18n.Has(key) {
		return p.T(key)
	}
	return string(e.Action)
}

// roleText is an actor role in words.
func roleText(p *i18n.Printer, r domicile.Role) string {
	key := "role." + string(r)
	if i18n.Has(key) {
		return p.T(key)
	}
	return string(r)
}

func shortRef(s string) string {
	if len(s) > 12 {
		return s[:12] + "…"
	}
	return s
}

func catText(p *i18n.Printer, cs []domicile.Category) string {
	var out []string
	for _, c := range cs {
		key := "category." + string(c)
		if i18n.Has(key) {
			out = append(out, p.T(key))
		} else {
			out = append(out, string(c))
		}
	}
	return strings.Join(out, p.T("list.sep"))
}
