package keyd

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"domicile/kms"
)

// MaxRequestBytes bounds the body of every request and response.
const MaxRequestBytes = 64 << 10

// Wire types. Byte strings are base64 in JSON. Unknown fields are refused.
type (
	wrapRequest struct {
		Plaintext []byte `json:"plaintext"`
		AAD       []byte `json:"aad,omitempty"`
	}
	wrapResponse struct {
		Version    uint32 `json:"version"`
		Ciphertext []byte `json:"ciphertext"`
	}
	unwrapRequest struct {
		Access     kms.Access `json:"access"`
		Version    uint32     `json:"version"`
		Ciphertext []byte     `json:"ciphertext"`
		AAD        []byte     `json:"aad,omitempty"`
	}
	unwrapResponse struct {
		Plaintext []byte       `json:"plaintext"`
		Decision  kms.Decision `json:"decision"`
	}
	versionRequest struct {
		Version uint32 `json:"version"`
	}
	versionsResponse struct {
		KEK     string   `json:"kek"`
		Current uint32   `json:"current"`
		All     []uint32 `json:"all"`
	}
	errorResponse struct {
		Error          string        `json:"error"`
		Message        string        `json:"message"`
		Decision       *kms.Decision `json:"decision,omitempty"`
		Version        uint32        `json:"version,omitempty"`
		VersionProblem string        `json:"version_problem,omitempty"`
	}
)

// Error codes in errorResponse.Error.
const (
	codeBadRequest        = "bad_request"
	codeUnauthenticated   = "unauthenticated"
	codeDenied            = "denied"
	codeInvalidCiphertext = "invalid_ciphertext"
	codeVersion           = "version"
	codeUnavailable       = "unavailable"
	codeInternal          = "internal"
)

// LogEntry is one line of the custodian's decision log (JSON lines).
type LogEntry struct {
	kms.Decision
	// Op is "unwrap", "rotate" or "retire".
	Op string `json:"op"`
	// Client is the common name of the client certificate.
	Client string `json:"client"`
	// KEK is the id of the custodian's KEK.
	KEK string `json:"kek"`
	// Result is "ok", "denied", or the error code of a failed operation.
	Result string `json:"result"`
}

// ServerConfig configures a custodian.
type ServerConfig struct {
	// KEK is the custodian's own key (a filekms keyring). Required.
	KEK kms.KEK
	// Policy rules on every unwrap and key administration request. Required.
	Policy *Policy
	// DecisionLog is the path of the JSON-lines decision log, created with
	// mode 0600 if absent and appended to. Required.
	DecisionLog string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives operational messages (never key material). Default: discard.
	Logger *slog.Logger
}

// Server is the custodian's HTTP handler. Every request must come over TLS
// with a verified client certificate (see ServerTLSConfig). It is safe for
// concurrent use.
type Server struct {
	kek    kms.KEK
	now    func() time.Time
	logger *slog.Logger
	policy atomic.Pointer[Policy]
	mux    *http.ServeMux

	// logMu serialises appends to the decision log.
	logMu sync.Mutex
	log   *os.File
}

// NewServer opens the decision log and returns a custodian. Close it to close the log.
func NewServer(cfg ServerConfig) (*Server, error) {
	switch {
	case cfg.KEK == nil:
		return nil, errors.New("keyd: server without a KEK")
	case cfg.Policy == nil:
		return nil, errors.New("keyd: server without a policy")
	case cfg.DecisionLog == "":
		return nil, errors.New("keyd: server without a decision log")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f, err := os.OpenFile(cfg.DecisionLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("keyd: open decision log: %w", err)
	}
	s := &Server{kek: cfg.KEK, now: cfg.Now, logger: cfg.Logger, log: f}
	s.policy.Store(cfg.Policy)
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /v1/wrap", s.handleWrap)
	s.mux.HandleFunc("POST /v1/unwrap", s.handleUnwrap)
	s.mux.HandleFunc("POST /v1/rotate", s.handleRotate)
	s.mux.HandleFunc("POST /v1/retire", s.handleRetire)
	s.mux.HandleFunc("GET /v1/versions", s.handleVersions)
	return s, nil
}

// SetPolicy replaces the policy for subsequent requests (for example on SIGHUP).
func (s *Server) SetPolicy(p *Policy) { s.policy.Store(p) }

// Close closes the decision log.
func (s *Server) Close() error {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.Close()
}

// HTTPServer returns an http.Server serving s with tlsConfig and conservative
// timeouts. Serve it with ServeTLS(ln, "", "").
func (s *Server) HTTPServer(tlsConfig *tls.Config) *http.Server {
	return &http.Server{
		Handler:           s,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		writeJSON(w, http.StatusUnauthorized, errorResponse{Error: codeUnauthenticated, Message: "a verified client certificate is required"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

func clientName(r *http.Request) string { return r.TLS.VerifiedChains[0][0].Subject.CommonName }

// decode reads a bounded JSON body into v, refusing unknown fields and trailing data.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the JSON body")
		}
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: codeBadRequest, Message: "malformed request: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal","message":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// appendLog writes e to the decision log and syncs it. If it fails, the
// custodian fails closed: the caller answers 503 and releases nothing.
func (s *Server) appendLog(e LogEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if _, err := s.log.Write(append(b, '\n')); err != nil {
		return err
	}
	return s.log.Sync()
}

func (s *Server) logFailed(w http.ResponseWriter, err error) {
	s.logger.Error("keyd: decision log append failed; refusing", "err", err)
	w.Header().Set("Retry-After", "5")
	writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: codeUnavailable, Message: "decision log unavailable"})
}

// kekError writes the response for an error from the custodian's own KEK.
func (s *Server) kekError(w http.ResponseWriter, err error, d *kms.Decision) string {
	var ve *kms.VersionError
	switch {
	case errors.Is(err, kms.ErrInvalidCiphertext):
		writeJSON(w, http.StatusUnprocessableEntity, errorResponse{Error: codeInvalidCiphertext, Message: err.Error(), Decision: d})
		return codeInvalidCiphertext
	case errors.As(err, &ve):
		writeJSON(w, http.StatusConflict, errorResponse{Error: codeVersion, Message: err.Error(), Decision: d, Version: ve.Version, VersionProblem: ve.Problem})
		return codeVersion
	case errors.Is(err, kms.ErrUnavailable):
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, errorResponse{Error: codeUnavailable, Message: "custodian key unavailable", Decision: d})
		return codeUnavailable
	default:
		// Validation errors from the KEK (sizes, access) are the caller's.
		s.logger.Warn("keyd: request refused", "err", err)
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: codeBadRequest, Message: err.Error(), Decision: d})
		return codeBadRequest
	}
}

func (s *Server) handleWrap(w http.ResponseWriter, r *http.Request) {
	var req wrapRequest
	if !decode(w, r, &req) {
		return
	}
	v, ct, err := s.kek.Wrap(r.Context(), req.Plaintext, req.AAD)
	if err != nil {
		s.kekError(w, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, wrapResponse{Version: v, Ciphertext: ct})
}

func (s *Server) handleUnwrap(w http.ResponseWriter, r *http.Request) {
	var req unwrapRequest
	if !decode(w, r, &req) {
		return
	}
	if err := kms.CheckUnwrap(req.Access, req.Version, req.Ciphertext, req.AAD); err != nil {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: codeBadRequest, Message: err.Error()})
		return
	}
	client := clientName(r)
	d := kms.Decision{Time: s.now().UTC(), Access: req.Access, Version: req.Version}
	if req.Access.Cell != client {
		d.Reason = fmt.Sprintf("client certificate is for cell %q, not %q", client, req.Access.Cell)
	} else {
		d.Allowed, d.Clause, d.Reason = s.policy.Load().Decide(req.Access, d.Time)
	}
	entry := LogEntry{Decision: d, Op: "unwrap", Client: client, KEK: s.kek.ID(), Result: "denied"}
	if !d.Allowed {
		if err := s.appendLog(entry); err != nil {
			s.logFailed(w, err)
			return
		}
		writeJSON(w, http.StatusForbidden, errorResponse{Error: codeDenied, Message: d.Reason, Decision: &d})
		return
	}
	pt, err := s.kek.Unwrap(r.Context(), req.Access, req.Version, req.Ciphertext, req.AAD)
	entry.Result = "ok"
	if err != nil {
		entry.Result = errorCode(err)
	}
	// The decision is durable before any plaintext leaves.
	if lerr := s.appendLog(entry); lerr != nil {
		clear(pt)
		s.logFailed(w, lerr)
		return
	}
	if err != nil {
		s.kekError(w, err, &d)
		return
	}
	writeJSON(w, http.StatusOK, unwrapResponse{Plaintext: pt, Decision: d})
	clear(pt)
}

func errorCode(err error) string {
	var ve *kms.VersionError
	switch {
	case errors.Is(err, kms.ErrInvalidCiphertext):
		return codeInvalidCiphertext
	case errors.As(err, &ve):
		return codeVersion
	case errors.Is(err, kms.ErrUnavailable):
		return codeUnavailable
	default:
		return codeBadRequest
	}
}

// admin rules on a key administration request and logs the decision.
func (s *Server) admin(w http.ResponseWriter, r *http.Request, op string, version uint32) bool {
	d := kms.Decision{Time: s.now().UTC(), Version: version, Access: kms.Access{Cell: clientName(r), Role: kms.RoleAdmin}}
	d.Allowed = s.policy.Load().AllowsKeyAdmin(op)
	if d.Allowed {
		d.Reason = fmt.Sprintf("policy key_admin allows %s", op)
	} else {
		d.Reason = fmt.Sprintf("policy key_admin does not allow %s", op)
	}
	result := "denied"
	if d.Allowed {
		result = "ok"
	}
	if err := s.appendLog(LogEntry{Decision: d, Op: op, Client: clientName(r), KEK: s.kek.ID(), Result: result}); err != nil {
		s.logFailed(w, err)
		return false
	}
	if !d.Allowed {
		writeJSON(w, http.StatusForbidden, errorResponse{Error: codeDenied, Message: d.Reason, Decision: &d})
		return false
	}
	return true
}

func (s *Server) handleRotate(w http.ResponseWriter, r *http.Request) {
	if !decode(w, r, &struct{}{}) || !s.admin(w, r, OpRotate, 0) {
		return
	}
	v, err := s.kek.Rotate(r.Context())
	if err != nil {
		s.kekError(w, err, nil)
		return
	}
	s.logger.Info("keyd: rotated", "kek", s.kek.ID(), "version", v, "client", clientName(r))
	writeJSON(w, http.StatusOK, versionRequest{Version: v})
}

func (s *Server) handleRetire(w http.ResponseWriter, r *http.Request) {
	var req versionRequest
	if !decode(w, r, &req) || !s.admin(w, r, OpRetire, req.Version) {
		return
	}
	if err := s.kek.Retire(r.Context(), req.Version); err != nil {
		s.kekError(w, err, nil)
		return
	}
	s.logger.Info("keyd: retired", "kek", s.kek.ID(), "version", req.Version, "client", clientName(r))
	writeJSON(w, http.StatusOK, versionRequest{Version: req.Version})
}

func (s *Server) handleVersions(w http.ResponseWriter, r *http.Request) {
	cur, all, err := s.kek.Versions(r.Context())
	if err != nil {
		s.kekError(w, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, versionsResponse{KEK: s.kek.ID(), Current: cur, All: all})
}

// ReadLog parses a decision log, for tests and audits. It refuses malformed lines.
func ReadLog(r io.Reader) ([]LogEntry, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var out []LogEntry
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var e LogEntry
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("keyd: decision log line %d: malformed", i+1)
		}
		out = append(out, e)
	}
	return out, nil
}
