package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"time"

	"domicile"
)

// Body deadlines. A request body, and the body of an object download,
// must move at a minimum rate: the deadline starts at BodyTimeout and
// grows by one second for every MinRate bytes moved, so that a large
// upload at a decent rate runs on and a client that trickles bytes (or
// declares a body it never sends) is cut off.
const (
	// DefaultBodyTimeout is Config.BodyTimeout's default.
	DefaultBodyTimeout = 30 * time.Second
	// DefaultMinRate is Config.MinRate's default: 64 KiB/s.
	DefaultMinRate = 64 << 10
)

// bodyDeadline keeps a connection's read or write deadline moving with the
// bytes that pass: start + timeout + moved/rate, never past limit.
type bodyDeadline struct {
	set     func(time.Time) error
	start   time.Time
	timeout time.Duration
	rate    int64
	limit   time.Time // zero: none
	moved   int64
	// at is the deadline last set; it is set again only when it moves
	// by a second or more.
	at time.Time
}

func (d *bodyDeadline) deadline() time.Time {
	t := d.start.Add(d.timeout + time.Duration(d.moved/d.rate)*time.Second)
	if !d.limit.IsZero() && t.After(d.limit) {
		t = d.limit
	}
	return t
}

// advance records n bytes moved and moves the deadline.
func (d *bodyDeadline) advance(n int) {
	d.moved += int64(n)
	if t := d.deadline(); t.Sub(d.at) >= time.Second {
		if d.set(t) == nil {
			d.at = t
		}
	}
}

// deadlineBody is a request body under a bodyDeadline.
type deadlineBody struct {
	io.ReadCloser
	d *bodyDeadline
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.d.advance(n)
	}
	return n, err
}

// limitBody puts r's body under the body deadline. w must be the
// server's own ResponseWriter (or one that unwraps to it).
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request) {
	if s.cfg.BodyTimeout <= 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	d := &bodyDeadline{set: rc.SetReadDeadline, start: time.Now(), timeout: s.cfg.BodyTimeout, rate: s.cfg.MinRate}
	if s.cfg.ReadTimeout > 0 {
		d.limit = d.start.Add(s.cfg.ReadTimeout)
	}
	if d.set(d.deadline()) != nil {
		return // not a network connection (a test recorder)
	}
	d.at = d.deadline()
	r.Body = &deadlineBody{ReadCloser: r.Body, d: d}
}

// copyBody streams body to w under the body deadline. A client that goes
// away, or stops reading, ends the copy; it is not a server error, and
// is logged at debug level only. A body that cannot be read is returned:
// the answer has begun, and answer logs it (the client sees the response
// cut short of its Content-Length).
func (s *Server) copyBody(w http.ResponseWriter, r *http.Request, body io.Reader) error {
	rc := http.NewResponseController(w)
	d := &bodyDeadline{set: rc.SetWriteDeadline, start: time.Now(), timeout: s.cfg.BodyTimeout, rate: s.cfg.MinRate}
	if s.cfg.WriteTimeout > 0 {
		d.limit = d.start.Add(s.cfg.WriteTimeout)
	}
	limited := s.cfg.BodyTimeout > 0 && d.set(d.deadline()) == nil
	if limited {
		d.at = d.deadline()
	}
	buf := make([]byte, 64<<10)
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				s.log.DebugContext(r.Context(), "download ended by the client", slog.String("route", r.Pattern), slog.Any("err", err))
				return nil
			}
			if limited {
				d.advance(n)
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// isTimeout reports whether err is a read that passed its deadline.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// downloadHeaders sets the headers that keep a browser from running a
// stored object: an attachment unless the deployment allows its media
// type inline, and a sandbox for anything shown. (nosniff is on every
// response.)
func (s *Server) downloadHeaders(h http.Header, name, contentType string) {
	mt, _, err := mime.ParseMediaType(contentType)
	disposition := "attachment"
	if err == nil && s.router != nil && s.router.Deployment().Inline(mt) {
		disposition = "inline"
	}
	// Object names are letters, digits, '.', '_' and '-' only
	// (domicile.ValidateObjectName): no quoting is needed.
	h.Set("Content-Disposition", disposition+`; filename="`+name+`"`)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
}

// writeCondition answers a read whose precondition decided the answer:
// 304 with no body, or the 412 problem (returned, for answer to write).
func writeCondition(w http.ResponseWriter, status int) error {
	if status == http.StatusNotModified {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	return domicile.Errorf(domicile.EPrecondition, "If-Match does not match the current entity tag")
}
