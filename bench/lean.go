package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"domicile/client"
	"domicile/httpapi"
)

// Limits of the lean client's answers: an answer over them is an error,
// never a hang or an unbounded allocation.
const (
	// DefaultMaxHeaderBytes bounds an answer's status line and header
	// block, and separately a chunked body's trailer.
	DefaultMaxHeaderBytes = 64 << 10
	// DefaultMaxBodyBytes bounds an answer's body: a record answer holds
	// at most a 1 MiB record.
	DefaultMaxBodyBytes = 8 << 20
	// leanLineBytes bounds one line of an answer's head (the read buffer).
	leanLineBytes = 8 << 10
	// maxChunkLine bounds a chunk-size line, as net/http does.
	maxChunkLine = 4096
	// maxInterim bounds the 1xx answers skipped before the real one.
	maxInterim = 8
	// problemBytes is how much of an error answer is decoded as a problem
	// document, as the net/http client does.
	problemBytes = 64 << 10
)

// LeanClient is the load generator's own HTTP/1.1 client for the record
// operations: it exists so that the generator takes as little CPU as it
// can from the server it measures on the same machine. Each worker holds
// one [LeanConn], a kept-alive TCP connection; a request is written from
// precomputed bytes with only its path and body appended, and the answer
// is parsed for what the measurement needs: the status line, the framing
// headers (Content-Length, Transfer-Encoding: chunked, Connection) and a
// body read fully into a reused buffer. It speaks plain HTTP only: https
// targets keep the net/http client.
//
// A LeanClient is read-only once made and may be shared by workers.
type LeanClient struct {
	addr   string
	prefix string // the base URL's escaped path, without a trailing slash
	head   []byte // " HTTP/1.1\r\n" and the fixed headers, after the path
	dialer net.Dialer
	// MaxHeaderBytes and MaxBodyBytes bound an answer's head and body
	// for the connections Conn makes after they are set; zero or less
	// means DefaultMaxHeaderBytes and DefaultMaxBodyBytes.
	MaxHeaderBytes, MaxBodyBytes int
}

// ErrLeanScheme is NewLeanClient's error for a base URL that is not
// plain http://.
var ErrLeanScheme = errors.New("bench: the lean client speaks plain http:// only")

// NewLeanClient returns a lean client for c's server, with c's token,
// purpose and justification headers. A base URL other than http://host
// (with an optional port and path) is an error; for https:// the error
// is ErrLeanScheme.
func NewLeanClient(c *httpapi.Client) (*LeanClient, error) {
	u, err := url.Parse(c.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("bench: base URL: %w", err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%w (base URL %q)", ErrLeanScheme, c.BaseURL)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("bench: base URL %q: want http://host[:port][/path]", c.BaseURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	h := []byte(" HTTP/1.1\r\nHost: " + u.Host + "\r\n")
	for _, kv := range [][2]string{{"Authorization", bearer(c.Token)}, {"Domicile-Purpose", c.Purpose}, {"Domicile-Justification", c.Justification}} {
		if kv[1] == "" {
			continue
		}
		if !validHeaderValue(kv[1]) {
			return nil, fmt.Errorf("bench: %s holds a byte a header cannot carry", kv[0])
		}
		h = append(h, kv[0]+": "+kv[1]+"\r\n"...)
	}
	return &LeanClient{
		addr: addr, prefix: strings.TrimSuffix(u.EscapedPath(), "/"), head: h,
		dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
	}, nil
}

func bearer(tok string) string {
	if tok == "" {
		return ""
	}
	return "Bearer " + tok
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Conn returns a new connection of the client, for one worker: it dials
// on its first request.
func (l *LeanClient) Conn() *LeanConn {
	lim := limits{header: l.MaxHeaderBytes, body: l.MaxBodyBytes}
	if lim.header <= 0 {
		lim.header = DefaultMaxHeaderBytes
	}
	if lim.body <= 0 {
		lim.body = DefaultMaxBodyBytes
	}
	return &LeanConn{l: l, lim: lim}
}

// LeanConn is one worker's persistent connection of a [LeanClient]. It
// is not safe for concurrent use: each worker has its own.
//
// A request that fails closes the connection and the next one dials
// again. A request that fails on a connection that already served one,
// before any byte of its answer arrived (the server closed the kept-alive
// connection, as servers do when idle), is sent once more on a new
// connection, as net/http does; any other failure is the request's error.
// The context's deadline becomes the connection's deadline, and its
// cancellation ends a request under way.
type LeanConn struct {
	l   *LeanClient
	lim limits

	nc       net.Conn
	br       *bufio.Reader
	reused   bool      // nc has answered a request
	deadline time.Time // nc's deadline as last set
	watched  <-chan struct{}
	unwatch  func() bool

	wbuf    []byte // the request being sent
	body    []byte // the last answer's body
	scratch []byte
}

// Close closes the connection, if open.
func (c *LeanConn) Close() error {
	if c.nc == nil {
		return nil
	}
	err := c.nc.Close()
	c.nc = nil
	if c.unwatch != nil {
		c.unwatch()
		c.unwatch, c.watched = nil, nil
	}
	return err
}

// PutRecord writes body as record kind/id of subject and returns the
// bytes sent. It succeeds on status 200 or 201 with a JSON object naming
// the record id; any other status is a *client.ProblemError, as the
// net/http client reports it.
func (c *LeanConn) PutRecord(ctx context.Context, subject, kind, id string, body []byte) (int64, error) {
	b := c.recordLine(c.wbuf[:0], "PUT ", subject, kind, id)
	b = append(b, c.l.head...)
	b = append(b, "Content-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.wbuf = b
	status, ans, err := c.roundTrip(ctx, b)
	if err != nil {
		return 0, err
	}
	if status != 200 && status != 201 {
		return 0, statusError(status, ans)
	}
	if _, err := c.checkRecord(ans, id, false); err != nil {
		return 0, err
	}
	return int64(len(body)), nil
}

// GetRecord reads record kind/id of subject and returns the length of
// its data. It succeeds on status 200 with a JSON object that names the
// record id and holds a "data" object or array (checked by balancing its
// brackets, not by decoding it); any other status is a
// *client.ProblemError.
func (c *LeanConn) GetRecord(ctx context.Context, subject, kind, id string) (int64, error) {
	b := c.recordLine(c.wbuf[:0], "GET ", subject, kind, id)
	b = append(b, c.l.head...)
	b = append(b, "\r\n"...)
	c.wbuf = b
	status, ans, err := c.roundTrip(ctx, b)
	if err != nil {
		return 0, err
	}
	if status != 200 {
		return 0, statusError(status, ans)
	}
	return c.checkRecord(ans, id, true)
}

func (c *LeanConn) recordLine(b []byte, method, subject, kind, id string) []byte {
	b = append(b, method...)
	b = append(b, c.l.prefix...)
	b = append(b, "/v1/subjects/"...)
	b = append(b, url.PathEscape(subject)...)
	b = append(b, "/records/"...)
	b = append(b, url.PathEscape(kind)...)
	b = append(b, '/')
	return append(b, url.PathEscape(id)...)
}

// errNotRecord is the error of a 2xx answer that is not the record.
var errNotRecord = errors.New("bench: answer is not the record asked for")

// checkRecord checks that ans is a JSON object holding "id":"<id>" and,
// if data, a "data" object or array, whose length it returns. The id is
// matched as sent: the mixes' ids need no JSON escaping.
func (c *LeanConn) checkRecord(ans []byte, id string, data bool) (int64, error) {
	ans = bytes.TrimRight(ans, " \t\r\n")
	if len(ans) < 2 || ans[0] != '{' || ans[len(ans)-1] != '}' {
		return 0, errNotRecord
	}
	c.scratch = append(append(append(c.scratch[:0], `"id":"`...), id...), '"')
	if !bytes.Contains(ans, c.scratch) {
		return 0, errNotRecord
	}
	if !data {
		return 0, nil
	}
	i := bytes.Index(ans, []byte(`"data":`))
	if i < 0 {
		return 0, errNotRecord
	}
	n := jsonContainerLen(ans[i+len(`"data":`):])
	if n <= 0 {
		return 0, errNotRecord
	}
	return int64(n), nil
}

// jsonContainerLen returns the length of the JSON object or array that b
// starts with (after spaces), by balancing brackets outside strings; 0 if
// b does not start with one or it is not closed.
func jsonContainerLen(b []byte) int {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	if i == len(b) || b[i] != '{' && b[i] != '[' {
		return 0
	}
	start, depth, in := i, 0, false
	for ; i < len(b); i++ {
		switch ch := b[i]; {
		case in:
			if ch == '\\' {
				i++
			} else if ch == '"' {
				in = false
			}
		case ch == '"':
			in = true
		case ch == '{' || ch == '[':
			depth++
		case ch == '}' || ch == ']':
			depth--
			if depth == 0 {
				return i + 1 - start
			}
		}
	}
	return 0
}

// statusError is the error of an answer with an unexpected status: its
// problem document as the net/http client decodes it, so that errors are
// classified alike.
func statusError(status int, body []byte) error {
	b := body[:min(len(body), problemBytes)]
	var p client.Problem
	if err := json.Unmarshal(b, &p); err != nil || p.Status == 0 {
		p = client.Problem{Status: status, Code: "http", Detail: strings.TrimSpace(string(b))}
	}
	return &client.ProblemError{Problem: p}
}

// roundTrip sends req and reads the answer; its body is valid until the
// next request.
func (c *LeanConn) roundTrip(ctx context.Context, req []byte) (int, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	for attempt := 0; ; attempt++ {
		if c.nc == nil {
			if err := c.dial(ctx); err != nil {
				if cerr := ctxErr(ctx); cerr != nil {
					return 0, nil, cerr
				}
				return 0, nil, err
			}
		}
		reused := c.reused
		c.arm(ctx)
		status, body, answered, err := c.exchange(req)
		if err == nil {
			return status, body, nil
		}
		c.Close()
		if cerr := ctxErr(ctx); cerr != nil {
			return 0, nil, cerr
		}
		if reused && !answered && attempt == 0 && staleConn(err) {
			continue
		}
		return 0, nil, err
	}
}

// ctxErr is ctx's error, or context.DeadlineExceeded once its deadline
// has passed (the connection's deadline may end a read before ctx's own
// timer ends ctx).
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// staleConn reports whether err is what writing to or reading from a
// connection the server has closed gives.
func staleConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (c *LeanConn) dial(ctx context.Context) error {
	nc, err := c.l.dialer.DialContext(ctx, "tcp", c.l.addr)
	if err != nil {
		return err
	}
	c.nc, c.reused, c.deadline = nc, false, time.Time{}
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, leanLineBytes)
	} else {
		c.br.Reset(nc)
	}
	return nil
}

// arm gives the connection ctx's deadline and makes ctx's cancellation
// end the request under way; both are set again only when they change.
func (c *LeanConn) arm(ctx context.Context) {
	dl, _ := ctx.Deadline()
	if !dl.Equal(c.deadline) {
		c.nc.SetDeadline(dl)
		c.deadline = dl
	}
	if done := ctx.Done(); done != c.watched {
		if c.unwatch != nil {
			c.unwatch()
		}
		c.watched, c.unwatch = done, nil
		if done != nil {
			nc := c.nc
			c.unwatch = context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
		}
	}
}

// exchange writes req and reads its answer, skipping interim (1xx)
// answers. answered says whether any byte of an answer arrived.
func (c *LeanConn) exchange(req []byte) (status int, body []byte, answered bool, err error) {
	if _, err := c.nc.Write(req); err != nil {
		return 0, nil, false, err
	}
	if _, err := c.br.Peek(1); err != nil {
		return 0, nil, false, err
	}
	for range maxInterim + 1 {
		r, err := readResponse(c.br, c.body[:0], c.lim)
		if r.body != nil {
			c.body = r.body[:0]
		}
		if err != nil {
			return 0, nil, true, err
		}
		if r.status == 101 {
			return 0, nil, true, errors.New("bench: unexpected 101 switching protocols")
		}
		if r.status >= 200 {
			if r.close {
				c.Close()
			} else {
				c.reused = true
			}
			return r.status, r.body, true, nil
		}
	}
	return 0, nil, true, errors.New("bench: too many interim (1xx) answers")
}

// limits bound what readResponse reads.
type limits struct{ header, body int }

// response is an answer as readResponse parsed it.
type response struct {
	status int
	// body is the answer's body, in the buffer readResponse was given
	// (grown if needed).
	body []byte
	// close says the connection cannot carry another request: the server
	// said Connection: close (or spoke HTTP/1.0 without keep-alive), or
	// the body ran to the end of the connection.
	close bool
}

// Errors of readResponse for answers over its limits or malformed.
var (
	errHeaderTooLarge = errors.New("bench: answer header block over its limit")
	errLineTooLong    = errors.New("bench: answer header line over its limit")
	errBodyTooLarge   = errors.New("bench: answer body over its limit")
	errMalformed      = errors.New("bench: malformed HTTP answer")
	errTransferCoding = errors.New("bench: unsupported transfer encoding in answer")
	errChunked        = errors.New("bench: malformed chunked answer body")
)

// readResponse reads one HTTP/1.x answer to a GET or PUT from br: the
// status line, the header block (at most lim.header bytes) and the body
// (at most lim.body bytes), read into buf. It reads no further than the
// answer's end, except for a body that runs to the end of the connection.
// Interim (1xx) answers are returned like others, without a body.
func readResponse(br *bufio.Reader, buf []byte, lim limits) (response, error) {
	r := response{body: buf[:0]}
	budget := lim.header
	line, err := readLine(br, &budget)
	if err != nil {
		return r, err
	}
	var minor byte
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || line[7] != '0' && line[7] != '1' ||
		!digit(line[9]) || !digit(line[10]) || !digit(line[11]) || line[9] == '0' || len(line) > 12 && line[12] != ' ' {
		return r, errMalformed
	}
	minor = line[7] - '0'
	r.status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')

	var (
		length               int64 = -1
		te                   int
		chunked              bool
		connClose, keepAlive bool
	)
	for {
		line, err := readLine(br, &budget)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			return r, err
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !token(line[:colon]) {
			return r, errMalformed
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		switch {
		case len(name) == 14 && equalFold(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || length >= 0 && n != length {
				return r, errMalformed
			}
			length = n
		case len(name) == 17 && equalFold(name, "transfer-encoding"):
			te++
			chunked = equalFold(value, "chunked")
			if !chunked || te > 1 {
				// net/http takes a single Transfer-Encoding, chunked.
				chunked = false
				te = 2
			}
		case len(name) == 10 && equalFold(name, "connection"):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = trimOWS(tok)
				connClose = connClose || equalFold(tok, "close")
				keepAlive = keepAlive || equalFold(tok, "keep-alive")
			}
		}
	}
	if minor == 0 {
		// Transfer-Encoding means nothing in HTTP/1.0 (RFC 9112 6.1).
		te, chunked = 0, false
	}
	if te > 1 {
		return r, errTransferCoding
	}
	r.close = connClose || minor == 0 && !keepAlive
	if r.status < 200 || r.status == 204 || r.status == 304 {
		return r, nil
	}
	switch {
	case chunked:
		r.body, err = readChunked(br, r.body, lim)
	case length > int64(lim.body):
		err = errBodyTooLarge
	case length >= 0:
		r.body = grow(r.body, int(length), lim.body)[:length]
		if _, err = io.ReadFull(br, r.body); err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	default:
		r.close = true
		r.body, err = readToEOF(br, r.body, lim.body)
	}
	return r, err
}

// readLine returns the next line of an answer's head without its line
// end (CRLF, or a bare LF as net/http accepts), charging it to budget.
// The line is valid until the next read of br.
func readLine(br *bufio.Reader, budget *int) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	*budget -= len(line)
	switch {
	case err == bufio.ErrBufferFull:
		return nil, errLineTooLong
	case *budget < 0:
		return nil, errHeaderTooLarge
	case err == io.EOF && len(line) > 0:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readChunked reads a chunked body into buf, as net/http's chunked
// reader does: CRLF line ends, chunk extensions ignored, and a bound on
// the non-data overhead relative to the data.
func readChunked(br *bufio.Reader, buf []byte, lim limits) ([]byte, error) {
	var excess int64
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull || len(line)-2 >= maxChunkLine:
			return buf, errChunked
		case err == io.EOF:
			return buf, io.ErrUnexpectedEOF
		case err != nil:
			return buf, err
		}
		if cr := bytes.IndexByte(line, '\r'); cr < 0 || cr != len(line)-2 {
			return buf, errChunked
		}
		excess += int64(len(line))
		line = bytes.TrimRight(line[:len(line)-2], " \t")
		line, _, _ = bytes.Cut(line, []byte(";"))
		n, ok := parseHex(line)
		if !ok {
			return buf, errChunked
		}
		excess = max(excess-16-2*int64(n), 0)
		if excess > 16<<10 {
			return buf, errChunked
		}
		if n == 0 {
			return buf, readTrailer(br, lim.header)
		}
		if n > uint64(lim.body-len(buf)) {
			return buf, errBodyTooLarge
		}
		end := len(buf) + int(n)
		buf = grow(buf, end, lim.body)[:end]
		if _, err := io.ReadFull(br, buf[end-int(n):]); err != nil {
			return buf, unexpected(err)
		}
		crlf, err := br.Peek(2)
		if err != nil {
			return buf, unexpected(err)
		}
		if crlf[0] != '\r' || crlf[1] != '\n' {
			return buf, errChunked
		}
		br.Discard(2)
	}
}

// readTrailer reads a chunked body's trailer: header lines up to an
// empty one, at most max bytes.
func readTrailer(br *bufio.Reader, max int) error {
	for {
		line, err := readLine(br, &max)
		if err != nil {
			return unexpected(err)
		}
		if len(line) == 0 {
			return nil
		}
		if colon := bytes.IndexByte(line, ':'); colon <= 0 || !token(line[:colon]) {
			return errChunked
		}
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readToEOF reads a body that runs to the end of the connection.
func readToEOF(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if len(buf) > max {
				return buf, errBodyTooLarge
			}
			buf = grow(buf, len(buf)+1, max+1)
		}
		n, err := br.Read(buf[len(buf):min(cap(buf), max+1)])
		buf = buf[:len(buf)+n]
		if len(buf) > max {
			return buf, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// grow returns buf with room for n bytes, keeping its contents; it
// allocates no more than limit (or n, if larger).
func grow(buf []byte, n, limit int) []byte {
	if n <= cap(buf) {
		return buf
	}
	nb := make([]byte, len(buf), max(n, min(2*cap(buf), limit), min(4096, limit)))
	copy(nb, buf)
	return nb
}

func digit(c byte) bool { return '0' <= c && c <= '9' }

// parseLength parses a Content-Length value as net/http does: decimal
// digits only, at most 2^63-1.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !digit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseHex parses a chunk size: 1 to 16 hex digits.
func parseHex(v []byte) (uint64, bool) {
	if len(v) == 0 || len(v) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(c)
	}
	return n, true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b equals the lower-case ASCII s, ignoring
// ASCII case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// token reports whether b is an HTTP token (a header field name).
func token(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
