package report

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"domicile"
	"domicile/cell"
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
		period.From = sub.Created
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
	in.Log = LogRef{Cell: c.ID(), Origin: l.Origin(), VerifierKey: l.VerifierKey(), URL: "/log/" + c.ID() + "/", Checkpoint: string(head.Signed), Size: head.Size}
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
// each cell's events up to its latest signed checkpoint.
func (s *Sources) Transparency(ctx context.Context, period Period, lang i18n.Lang) (*Transparency, error) {
	in := TransparencyInput{Now: s.Now().UTC(), Period: period, Deployment: s.Router.Deployment()}
	for _, c := range s.Router.Cells() {
		l := s.Logs(c.ID())
		if l == nil {
			continue
		}
		head, err := l.Latest(ctx)
		if err != nil {
			return nil, err
		}
		cl := CellLog{Cell: c.Config(), Log: LogRef{Cell: c.ID(), Origin: l.Origin(), VerifierKey: l.VerifierKey(), URL: "/log/" + c.ID() + "/", Checkpoint: string(head.Signed), Size: head.Size}}
		evs, err := CellEvents(ctx, c, head.Size)
		if err != nil {
			return nil, err
		}
		cl.Events = evs
		in.Cells = append(in.Cells, cl)
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
		if in.Transfers, err = s.Transfers.Summary(ctx, period.From, period.To); err != nil {
			return nil, err
		}
	}
	return BuildTransparency(i18n.NewPrinter(lang), in), nil
}

// EventReader reads the summaries of a cell's events (cell.Cell does).
type EventReader interface {
	EventSummaries(ctx context.Context, start, end int64) ([]cell.EventSummary, error)
}

// CellEvents returns the first size events of a cell as the transparency
// report counts them: the summary of the committed event while the cell
// has it, else (for an erased subject) the leaf's public metadata.
func CellEvents(ctx context.Context, st EventReader, size int64) ([]LoggedEvent, error) {
	var out []LoggedEvent
	for start := int64(0); start < size; start += 1000 {
		end := min(start+1000, size)
		evs, err := st.EventSummaries(ctx, start, end)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			le := LoggedEvent{Time: e.Time, Action: e.Action, Role: e.Role, Outcome: e.Outcome, Basis: e.Basis, Detail: e.Detail}
			if e.Erased {
				le.Basis = "(erased)"
			}
			out = append(out, le)
		}
	}
	return out, nil
}
