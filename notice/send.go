package notice

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"domicile"
	"domicile/report"
)

// Store tracks plans, notices, their delivery and acknowledgement, and the
// changes that took effect. Implementations are safe for concurrent use.
type Store interface {
	// PutPlan stores a plan and its notices; storing a plan again keeps
	// the notices' delivery state.
	PutPlan(ctx context.Context, p *Plan) error
	// Plan returns a plan, or domicile.ErrNotFound.
	Plan(ctx context.Context, id string) (*Plan, error)
	// Notices lists the notices of a plan.
	Notices(ctx context.Context, plan string) ([]State, error)
	// SubjectNotices lists the notices of a subject reference (hex).
	SubjectNotices(ctx context.Context, ref string) ([]State, error)
	// Notice returns one notice, or domicile.ErrNotFound.
	Notice(ctx context.Context, id string) (*State, error)
	// RecordAttempt records a delivery attempt; delivered marks success.
	RecordAttempt(ctx context.Context, id string, at time.Time, errText string, delivered bool) error
	// Acknowledge records the subject's acknowledgement (the first one).
	Acknowledge(ctx context.Context, id string, at time.Time) error
	// PutApplied records changes that took effect; Applied lists them.
	PutApplied(ctx context.Context, cs []report.ChangeLine) error
	Applied(ctx context.Context) ([]report.ChangeLine, error)
}

// State is a notice and what became of it.
type State struct {
	Notice       report.SubjectNotice `json:"notice"`
	Cell         string               `json:"cell"`
	Attempts     int                  `json:"attempts"`
	LastError    string               `json:"last_error,omitempty"`
	Delivered    *time.Time           `json:"delivered,omitempty"`
	Acknowledged *time.Time           `json:"acknowledged,omitempty"`
}

// Line returns the notice as a statement shows it.
func (s State) Line() report.NoticeLine {
	return report.NoticeLine{ID: s.Notice.ID, Plan: s.Notice.Plan, Created: s.Notice.Created, Attempts: s.Attempts,
		Delivered: s.Delivered, Acknowledged: s.Acknowledged, Texts: s.Notice.Texts}
}

// SignatureHeader is the header carrying a payload's signature:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>".
const SignatureHeader = "Domicile-Signature"

// IdempotencyHeader carries the notice id: a receiver that has seen it
// must not act on it again.
const IdempotencyHeader = "Idempotency-Key"

// Sign returns the signature header value of body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is returned by Verify for a missing, malformed, wrong or
// stale signature; a receiver answers it with 401 and ignores the payload.
var ErrBadSignature = errors.New("notice: bad signature")

// Verify checks a signature header against body: the HMAC must match and
// its time must be within tolerance of now (replay protection).
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return ErrBadSignature
	}
	t := time.Unix(sec, 0)
	if d := now.Sub(t); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside tolerance", ErrBadSignature)
	}
	if strconv.FormatInt(sec, 10) != ts {
		return ErrBadSignature
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(sig)) {
		return ErrBadSignature
	}
	return nil
}

// Payload is the JSON body a webhook receives.
type Payload struct {
	ID         string                       `json:"id"`
	Type       string                       `json:"type"` // "change-notice"
	Plan       string                       `json:"plan"`
	SubjectRef string                       `json:"subject_ref"`
	Cell       string                       `json:"cell"`
	Created    time.Time                    `json:"created"`
	Texts      map[string]report.NoticeText `json:"texts"`
	// AckURL is where the subject (or the app on its behalf) acknowledges
	// the notice.
	AckURL string `json:"ack_url"`
}

// Backoff is the retry schedule: the n-th retry waits Base·2^(n-1),
// at most Max; delivery gives up after Attempts attempts.
type Backoff struct {
	Base     time.Duration
	Max      time.Duration
	Attempts int
}

// Delay returns the wait before attempt n (n ≥ 2).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 2; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Sender delivers notices to a webhook. Its methods are safe for
// concurrent use; a Sender owns the goroutines Start launches and stops
// them in Close.
type Sender struct {
	Store  Store
	Secret []byte
	Client *http.Client
	Now    func() time.Time
	// Backoff defaults to 500ms doubling up to 5 minutes, 8 attempts.
	Backoff Backoff
	// AckURL formats the acknowledgement URL of a notice id.
	AckURL func(id string) string
	// OnDelivered, if set, is called once a notice is delivered (the
	// service logs it in the subject's trail).
	OnDelivered func(ctx context.Context, s State) error

	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (s *Sender) init() {
	s.once.Do(func() {
		if s.Client == nil {
			s.Client = &http.Client{Timeout: 30 * time.Second}
		}
		if s.Now == nil {
			s.Now = time.Now
		}
		if s.Backoff == (Backoff{}) {
			s.Backoff = Backoff{Base: 500 * time.Millisecond, Max: 5 * time.Minute, Attempts: 8}
		}
		s.ctx, s.cancel = context.WithCancel(context.Background())
	})
}

// Result summarizes a plan's delivery.
type Result struct {
	Delivered int `json:"delivered"`
	Failed    int `json:"failed"`
	Skipped   int `json:"skipped"` // delivered before
}

// Send delivers every undelivered notice of a plan to url, retrying each
// with backoff, and returns when all are delivered or given up.
func (s *Sender) Send(ctx context.Context, plan, url string) (Result, error) {
	return s.SendCell(ctx, plan, "", url)
}

// SendCell is Send for the notices of one cell's subjects (every cell's
// when cell is empty): a process delivers the notices of the cells it
// serves, whose logs record each delivery.
func (s *Sender) SendCell(ctx context.Context, plan, cell, url string) (Result, error) {
	s.init()
	var res Result
	states, err := s.Store.Notices(ctx, plan)
	if err != nil {
		return res, err
	}
	for _, st := range states {
		if cell != "" && st.Cell != cell {
			continue
		}
		if st.Delivered != nil {
			res.Skipped++
			continue
		}
		if err := s.deliver(ctx, st, url); err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			res.Failed++
			continue
		}
		res.Delivered++
	}
	return res, nil
}

// Start delivers a plan's notices in the background; Close stops it.
func (s *Sender) Start(plan, url string) { s.StartCell(plan, "", url) }

// StartCell delivers the notices of one cell's subjects of a plan (every
// cell's when cell is empty) in the background; Close stops it.
func (s *Sender) StartCell(plan, cell, url string) {
	s.init()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.SendCell(s.ctx, plan, cell, url)
	}()
}

// Close stops background deliveries and waits for them.
func (s *Sender) Close(ctx context.Context) error {
	s.init()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// permanent is a delivery failure not worth retrying (a 4xx other than
// 408 and 429).
type permanent struct{ error }

func (s *Sender) deliver(ctx context.Context, st State, url string) error {
	body, err := json.Marshal(Payload{ID: st.Notice.ID, Type: "change-notice", Plan: st.Notice.Plan, SubjectRef: st.Notice.SubjectRef,
		Cell: st.Cell, Created: st.Notice.Created, Texts: st.Notice.Texts, AckURL: s.ackURL(st.Notice.ID)})
	if err != nil {
		return err
	}
	var last error
	for n := 1; n <= s.Backoff.Attempts; n++ {
		if n > 1 {
			t := time.NewTimer(s.Backoff.Delay(n))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		last = s.post(ctx, url, st.Notice.ID, body)
		errText := ""
		if last != nil {
			errText = last.Error()
		}
		at := s.Now().UTC()
		if err := s.Store.RecordAttempt(context.WithoutCancel(ctx), st.Notice.ID, at, errText, last == nil); err != nil {
			return err
		}
		if last == nil {
			st.Attempts = n
			st.Delivered = &at
			if s.OnDelivered != nil {
				return s.OnDelivered(context.WithoutCancel(ctx), st)
			}
			return nil
		}
		var p permanent
		if errors.As(last, &p) || ctx.Err() != nil {
			return last
		}
	}
	return last
}

func (s *Sender) ackURL(id string) string {
	if s.AckURL == nil {
		return ""
	}
	return s.AckURL(id)
}

func (s *Sender) post(ctx context.Context, url, id string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return permanent{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(IdempotencyHeader, id)
	req.Header.Set(SignatureHeader, Sign(s.Secret, s.Now(), body))
	resp, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("notice: post: %v", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("notice: webhook answered %d", resp.StatusCode)
	}
	return permanent{fmt.Errorf("notice: webhook answered %d", resp.StatusCode)}
}

// Lines adapts a Store to what a data statement reads.
type Lines struct{ Store Store }

// SubjectNotices returns a subject's notices as a statement shows them.
func (l Lines) SubjectNotices(ctx context.Context, ref domicile.SubjectRef) ([]report.NoticeLine, error) {
	sts, err := l.Store.SubjectNotices(ctx, ref.String())
	if err != nil {
		return nil, err
	}
	out := make([]report.NoticeLine, 0, len(sts))
	for _, s := range sts {
		out = append(out, s.Line())
	}
	return out, nil
}

// Applied returns the changes that took effect.
func (l Lines) Applied(ctx context.Context) ([]report.ChangeLine, error) { return l.Store.Applied(ctx) }
