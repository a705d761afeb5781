package report

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"domicile"
	"domicile/figures"
	"domicile/i18n"
	"domicile/law"
	"domicile/residency"
	"domicile/tlog"
)

// NoticeSource gives the change notices of a subject and the changes that
// took effect.
type NoticeSource interface {
	SubjectNotices(ctx context.Context, ref domicile.SubjectRef) ([]NoticeLine, error)
	Applied(ctx context.Context) ([]ChangeLine, error)
}

// AuthoritySource gives the authority requests of a subject (with their
// deferrals) and all requests.
type AuthoritySource interface {
	SubjectLines(ctx context.Context, ref domicile.SubjectRef) ([]AuthorityLine, error)
	Lines(ctx context.Context) ([]AuthorityLine, error)
}

// Sources is what documents are gathered from in a running deployment.
// Nil Notices, Authority or Transfers are treated as sources with nothing
// to report, and the documents say which are absent where it matters.
type Sources struct {
	Router *residency.Router
	// Logs returns a cell's running log (nil if none).
	Logs      func(cell string) *tlog.Log
	Notices   NoticeSource
	Authority AuthoritySource
	Transfers Transfers
	Law       *law.Engine
	Now       func() time.Time
	// Remote, when set, gives the log figures of a cell of the deployment
	// that runs as its own process elsewhere (a router's, or a cell
	// process's view of its siblings): that cell counts them itself
	// ([Sources.CellFigures]) and answers through the network. Nil: such
	// a cell makes a deployment-wide figure unavailable here.
	Remote func(ctx context.Context, cell string, period Period) (*CellFigures, error)
}

// Statement gathers and builds the statement of subject id for actor a:
// the subject itself (a subject token for that subject) or the app. The
// request is logged in the subject's trail before anything is read; a
// refusal is logged too.
func (s *Sources) Statement(ctx context.Context, a domicile.Actor, id string, period Period, lang i18n.Lang) (*Statement, error) {
	c, k, err := s.Router.LocateFor(ctx, a, id, domicile.ActRead)
	if err != nil {
		return nil, err
	}
	h, err := c.Holdings(ctx, a, k)
	if err != nil {
		return nil, err
	}
	sub := h.Subject
	now := s.Now().UTC()
	if period.From.IsZero() {
		// Figures count by the minute of each event (its leaf's time).
		period.From = sub.Created.Truncate(time.Minute)
	}
	if period.To.IsZero() {
		period.To = now.Add(time.Second)
	}
	in := StatementInput{Now: now, Period: period, Deployment: s.Router.Deployment(), Cell: c.Config(),
		SubjectID: id, SubjectRef: k.Ref.String(), Jurisdiction: sub.Jurisdiction, Registered: sub.Created, Law: s.Law,
		Records: h.Records, Objects: h.Objects}
	l := s.Logs(c.ID())
	if l == nil {
		return nil, domicile.Errorf(domicile.EUnavailable, "no log for cell %s", c.ID())
	}
	head, err := l.Latest(ctx)
	if err != nil {
		return nil, err
	}
	in.Log = logRef(c.ID(), l, head)
	for _, e := range h.Events {
		if e.Committed == nil || e.Index >= head.Size {
			continue
		}
		var ev domicile.Event
		if err := json.Unmarshal(e.Committed, &ev); err != nil {
			continue
		}
		proof, err := l.ProveInclusion(ctx, e.Index, head.Size)
		if err != nil {
			return nil, err
		}
		ep := EventProof{Index: e.Index, Leaf: string(e.Leaf), Salt: e.Salt, Committed: string(e.Committed), Event: ev, Proof: []string{}}
		for _, h := range proof {
			ep.Proof = append(ep.Proof, base64.StdEncoding.EncodeToString(h[:]))
		}
		in.Events = append(in.Events, ep)
	}
	if s.Notices != nil {
		if in.Notices, err = s.Notices.SubjectNotices(ctx, k.Ref); err != nil {
			return nil, err
		}
		if in.Changes, err = s.Notices.Applied(ctx); err != nil {
			return nil, err
		}
	}
	if s.Authority != nil {
		if in.Authority, err = s.Authority.SubjectLines(ctx, k.Ref); err != nil {
			return nil, err
		}
	}
	if s.Transfers != nil {
		in.TransfersReported = true
		if in.Transfers, err = s.Transfers.SubjectTransfers(ctx, h.Events, period.From, period.To); err != nil {
			return nil, err
		}
	}
	return BuildStatement(i18n.NewPrinter(lang), in), nil
}

// Transparency gathers and builds the transparency report of a period:
// each cell's log figures counted over its leaves up to its latest signed
// checkpoint, the authority register's requests, and the ledger's
// figures. Its figures are the deployment's: a cell not served here is
// asked through Remote, and if it cannot be (no Remote, a cell that
// refuses to serve, a cell that cannot be reached) the report is refused
// with that cell's error rather than counted without it.
func (s *Sources) Transparency(ctx context.Context, period Period, lang i18n.Lang) (*Transparency, error) {
	in := TransparencyInput{Now: s.Now().UTC(), Period: period, Deployment: s.Router.Deployment()}
	for _, cc := range in.Deployment.Cells {
		var part *CellFigures
		err := s.Router.Serves(cc.ID)
		switch {
		case err == nil:
			part, err = s.CellFigures(ctx, cc.ID, period)
		case domicile.ErrorCode(err) == domicile.EMisdirected && s.Remote != nil:
			part, err = s.Remote(ctx, cc.ID, period)
		}
		if err != nil {
			return nil, domicile.Errorf(domicile.ErrorCode(err), "the transparency report counts every cell of the deployment: %v", err)
		}
		if part.Cell != cc.ID {
			return nil, domicile.Errorf(domicile.EUnavailable, "the transparency report counts every cell of the deployment, and cell %s answered for %q", cc.ID, truncate(part.Cell, 32))
		}
		in.Cells = append(in.Cells, CellLog{Cell: cc, Log: part.Log, Figures: part.Figures})
	}
	if s.Authority != nil {
		var err error
		if in.Requests, err = s.Authority.Lines(ctx); err != nil {
			return nil, err
		}
	}
	if s.Transfers != nil {
		in.TransfersReported = true
		var err error
		if in.Ledger, err = s.Transfers.Ledger(ctx, period.From, period.To); err != nil {
			return nil, err
		}
	}
	return BuildTransparency(i18n.NewPrinter(lang), in), nil
}

// CellFigures counts the log figures of the period of cell, a cell served
// here, over the leaves up to its latest signed checkpoint
// (figures.CountLog): one cell's part of the transparency report, which a
// cell process answers its router with.
func (s *Sources) CellFigures(ctx context.Context, cellID string, period Period) (*CellFigures, error) {
	if err := s.Router.Serves(cellID); err != nil {
		return nil, err
	}
	c := s.Router.CellByID(cellID)
	l := s.Logs(cellID)
	if l == nil {
		return nil, domicile.Errorf(domicile.EUnavailable, "cell %s has no running log", cellID)
	}
	head, err := l.Latest(ctx)
	if err != nil {
		return nil, err
	}
	cc := c.Config()
	part := &CellFigures{Cell: cellID, Jurisdiction: cc.Jurisdiction, Operator: cc.Operator, Log: logRef(cellID, l, head)}
	if part.Figures, err = figures.CountLog(ctx, c.PublicLog(), head.Size, period.From, period.To); err != nil {
		return nil, err
	}
	return part, nil
}

// logRef names a cell's log and its checkpoint head.
func logRef(cell string, l *tlog.Log, head *tlog.Head) LogRef {
	return LogRef{Cell: cell, Origin: l.Origin(), VerifierKey: l.VerifierKey(), URL: "/log/" + cell + "/", Checkpoint: string(head.Signed),
		Size: head.Size, RootHash: base64.StdEncoding.EncodeToString(head.Root[:])}
}
