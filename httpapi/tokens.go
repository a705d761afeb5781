package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"domicile/client"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"domicile"
)

// Token lifetimes.
const (
	// DefaultSubjectTokenTTL is the lifetime of a subject token made
	// without a ttl.
	DefaultSubjectTokenTTL = 24 * time.Hour
	// DefaultTokenTTL is the lifetime of any other token made without a
	// ttl.
	DefaultTokenTTL = 90 * 24 * time.Hour
	// DefaultMaxTokenTTL is the longest ttl a token may ask for, unless
	// Config.MaxTokenTTL says otherwise.
	DefaultMaxTokenTTL = 365 * 24 * time.Hour
	// DefaultTokenRecheck is how often, at most, a server reads the
	// control store's revocation number (Config.TokenRecheck).
	DefaultTokenRecheck = 2 * time.Second
	// DefaultTokenCacheSize bounds the token cache (Config.TokenCacheSize).
	DefaultTokenCacheSize = 10_000
)

// tokenSecretPrefix starts every bearer token secret.
const tokenSecretPrefix = "dmc_"

// NewTokenSecret returns a fresh bearer token secret and its id.
func NewTokenSecret() (secret, id string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	secret = tokenSecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	var i [6]byte
	if _, err := rand.Read(i[:]); err != nil {
		return "", "", err
	}
	return secret, "tok_" + hex.EncodeToString(i[:]), nil
}

// ValidTokenSecret reports whether s has the form of a secret
// NewTokenSecret makes: "dmc_" and 43 characters of unpadded base64url
// (32 bytes).
func ValidTokenSecret(s string) bool {
	rest, ok := strings.CutPrefix(s, tokenSecretPrefix)
	if !ok || len(rest) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	return err == nil && len(b) == 32
}

// HashTokenSecret returns the hash under which a secret's token is stored.
func HashTokenSecret(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// IssueToken creates a token in store, with its minting event in the
// control log naming actor, and returns its secret.
func IssueToken(ctx context.Context, store domicile.ControlStore, t domicile.Token, actor string) (string, *domicile.Token, error) {
	secret, id, err := NewTokenSecret()
	if err != nil {
		return "", nil, err
	}
	t.ID = id
	ev := domicile.ControlEvent{Time: t.Created, Action: domicile.ControlMint, Token: t.ID, Role: t.Role, Jurisdiction: t.Jurisdiction, Expires: t.Expires, Actor: actor}
	if err := store.PutToken(ctx, t, HashTokenSecret(secret), ev); err != nil {
		return "", nil, err
	}
	return secret, &t, nil
}

// RotateToken replaces token old in store by a new token with the same
// role, jurisdiction, subject and note, made at now and expiring at
// expires (zero: never), with the rotation's event naming actor. It
// returns the new secret and token.
func RotateToken(ctx context.Context, store domicile.ControlStore, old *domicile.Token, now, expires time.Time, actor string) (string, *domicile.Token, error) {
	secret, id, err := NewTokenSecret()
	if err != nil {
		return "", nil, err
	}
	t := domicile.Token{ID: id, Role: old.Role, Jurisdiction: old.Jurisdiction, Subject: old.Subject, Note: old.Note, Created: now, Expires: expires}
	ev := domicile.ControlEvent{Time: now, Action: domicile.ControlRotate, Token: t.ID, Replaces: old.ID, Role: t.Role, Jurisdiction: t.Jurisdiction, Expires: expires, Actor: actor}
	if err := store.RotateToken(ctx, old.ID, t, HashTokenSecret(secret), ev); err != nil {
		return "", nil, err
	}
	return secret, &t, nil
}

// tokenCache caches tokens by the hash of their secret. It is bounded,
// and it drops every entry when the control store's revocation number
// (ControlStore.Revocations) changes, which it reads at most once per
// interval: a revocation made by any process sharing the store is
// honoured here within that interval. Expiry is checked at each use, not
// cached. It is safe for concurrent use.
type tokenCache struct {
	store    domicile.ControlStore
	now      func() time.Time
	max      int
	interval time.Duration

	// rmu serialises reads of the revocation number.
	rmu sync.Mutex

	mu      sync.Mutex
	m       map[[32]byte]*domicile.Token
	seq     int64
	checked time.Time
}

func newTokenCache(store domicile.ControlStore, now func() time.Time, max int, interval time.Duration) *tokenCache {
	return &tokenCache{store: store, now: now, max: max, interval: interval, m: map[[32]byte]*domicile.Token{}}
}

// stale reports whether the revocation number must be read again.
func (c *tokenCache) stale(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checked.IsZero() || now.Before(c.checked) || now.Sub(c.checked) >= c.interval
}

// refresh reads the revocation number if it is due, dropping the cache
// when it changed.
func (c *tokenCache) refresh(ctx context.Context) error {
	if !c.stale(c.now()) {
		return nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	now := c.now()
	if !c.stale(now) {
		return nil // another request read it meanwhile
	}
	seq, err := c.store.Revocations(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if seq != c.seq {
		clear(c.m)
		c.seq = seq
	}
	c.checked = now
	c.mu.Unlock()
	return nil
}

// lookup returns the token whose secret hashes to sum, revoked or not,
// or domicile.ErrNotFound.
func (c *tokenCache) lookup(ctx context.Context, sum [32]byte) (*domicile.Token, error) {
	if err := c.refresh(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	t, ok := c.m[sum]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	t, err := c.store.TokenByHash(ctx, sum)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		// An arbitrary entry (map order): cheap, and a token dropped is
		// only read again.
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[sum] = t
	c.mu.Unlock()
	return t, nil
}

// drop empties the cache, after a revocation made by this process.
func (c *tokenCache) drop() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

// size returns the number of cached tokens.
func (c *tokenCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// lookupToken returns the token of a bearer secret, checking revocation
// and expiry.
func (s *Server) lookupToken(ctx context.Context, raw string) (*domicile.Token, error) {
	t, err := s.tokens.lookup(ctx, HashTokenSecret(raw))
	if errors.Is(err, domicile.ErrNotFound) {
		return nil, domicile.Errorf(domicile.EUnauthorized, "unknown token")
	}
	if err != nil {
		// Fail closed: a token whose revocation cannot be checked is not
		// honoured.
		s.log.ErrorContext(ctx, "token store unreadable; request refused (fail closed)", slog.Any("err", err))
		return nil, &domicile.Error{Code: domicile.EUnavailable, Message: "tokens cannot be checked now", RetryAfter: 1}
	}
	switch {
	case !t.Revoked.IsZero():
		return nil, domicile.Errorf(domicile.EUnauthorized, "token revoked")
	case !t.Active(s.cfg.Now()):
		return nil, domicile.Errorf(domicile.EUnauthorized, "token expired")
	}
	return t, nil
}

func tokenResponse(secret string, t *domicile.Token) client.TokenResponse {
	return client.TokenResponse{Token: secret, ID: t.ID, Expires: t.Expires, Role: t.Role, Jurisdiction: t.Jurisdiction, Subject: t.Subject, Note: t.Note}
}

// maxTokenTTL returns the longest ttl a token may have.
func (s *Server) maxTokenTTL() time.Duration {
	if s.cfg.MaxTokenTTL > 0 {
		return s.cfg.MaxTokenTTL
	}
	return DefaultMaxTokenTTL
}

// parseTTL reads a token's lifetime: empty is role's default (capped by
// the maximum).
func (s *Server) parseTTL(v string, role domicile.Role) (time.Duration, error) {
	max := s.maxTokenTTL()
	if v == "" {
		d := DefaultTokenTTL
		if role == domicile.RoleSubject {
			d = DefaultSubjectTokenTTL
		}
		return min(d, max), nil
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		return 0, domicile.FieldErrorf("ttl", "must be a Go duration such as \"24h\", \"90m\" or \"2s\"")
	case d <= 0:
		return 0, domicile.FieldErrorf("ttl", "must be positive")
	case d > max:
		return 0, domicile.FieldErrorf("ttl", "is over the longest lifetime this server grants, %s", max)
	}
	return d, nil
}

func (s *Server) requireAdmin(a domicile.Actor, what string) error {
	if a.Role != domicile.RoleAdmin {
		return domicile.Errorf(domicile.EForbidden, "only an admin token %s", what)
	}
	return nil
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := s.requireAdmin(a, "creates tokens"); err != nil {
		return err
	}
	var req client.TokenRequest
	if err := decodeJSON(r, maxJSONBody, &req); err != nil {
		return err
	}
	t, err := s.tokenRequest(r.Context(), req)
	if err != nil {
		return err
	}
	secret, tok, err := IssueToken(r.Context(), s.control, t, a.TokenID)
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "token minted", slog.String("token", tok.ID), slog.String("role", string(tok.Role)),
		slog.String("jurisdiction", string(tok.Jurisdiction)), slog.Time("expires", tok.Expires), slog.String("by", a.TokenID))
	writeJSON(w, http.StatusCreated, tokenResponse(secret, tok))
	return nil
}

// tokenRequest validates a token request.
func (s *Server) tokenRequest(ctx context.Context, req client.TokenRequest) (domicile.Token, error) {
	var t domicile.Token
	ro, err := domicile.ParseRole(req.Role)
	if err != nil {
		return t, err
	}
	j, err := domicile.ParseJurisdiction(req.Jurisdiction)
	if err != nil {
		return t, &domicile.Error{Code: domicile.EInvalid, Field: "jurisdiction", Message: err.(*domicile.Error).Message}
	}
	ttl, err := s.parseTTL(req.TTL, ro)
	if err != nil {
		return t, err
	}
	if err := domicile.ValidateText("note", req.Note, domicile.MaxTokenNoteBytes); err != nil {
		return t, err
	}
	now := s.cfg.Now().UTC()
	t = domicile.Token{Role: ro, Jurisdiction: j, Note: req.Note, Created: now, Expires: now.Add(ttl)}
	switch {
	case ro == domicile.RoleSubject && req.Subject == "":
		return t, domicile.FieldErrorf("subject", "a subject token needs the subject it reaches")
	case ro != domicile.RoleSubject && req.Subject != "":
		return t, domicile.FieldErrorf("subject", "only subject tokens name a subject")
	case req.Subject != "":
		id, err := NormalizeID("subject", req.Subject)
		if err != nil {
			return t, err
		}
		ref, err := s.router.Ref(ctx, id)
		if err != nil {
			return t, err
		}
		t.Subject = ref.String()
	}
	return t, nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := s.requireAdmin(a, "lists tokens"); err != nil {
		return err
	}
	limit, cur, err := listParams(r)
	if err != nil {
		return err
	}
	q := domicile.TokenQuery{After: string(cur), Limit: limit}
	if v := r.URL.Query().Get("role"); v != "" {
		if q.Role, err = domicile.ParseRole(v); err != nil {
			return err
		}
	}
	switch r.URL.Query().Get("active") {
	case "", "false":
	case "true":
		q.ActiveAt = s.cfg.Now()
	default:
		return domicile.FieldErrorf("active", "must be true or false")
	}
	toks, err := s.control.ListTokens(r.Context(), q)
	if err != nil {
		return err
	}
	out := client.TokenPage{Tokens: toks}
	if out.Tokens == nil {
		out.Tokens = []domicile.Token{}
	}
	if len(toks) == limit {
		out.Next = base64.RawURLEncoding.EncodeToString([]byte(toks[len(toks)-1].ID))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// tokenByPath returns the token named by the path's {tid}.
func (s *Server) tokenByPath(r *http.Request) (*domicile.Token, error) {
	id := r.PathValue("tid")
	t, err := s.control.Token(r.Context(), id)
	if errors.Is(err, domicile.ErrNotFound) {
		return nil, domicile.Errorf(domicile.ENotFound, "no token %q", truncate(id, 32))
	}
	return t, err
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := s.requireAdmin(a, "revokes tokens"); err != nil {
		return err
	}
	t, err := s.tokenByPath(r)
	if err != nil {
		return err
	}
	ev := domicile.ControlEvent{Time: s.cfg.Now().UTC(), Action: domicile.ControlRevoke, Token: t.ID, Role: t.Role, Jurisdiction: t.Jurisdiction, Actor: a.TokenID}
	t, err = s.control.RevokeToken(r.Context(), t.ID, ev)
	if err != nil {
		return err
	}
	s.tokens.drop()
	s.log.InfoContext(r.Context(), "token revoked", slog.String("token", t.ID), slog.String("role", string(t.Role)), slog.String("by", a.TokenID))
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) rotateToken(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := s.requireAdmin(a, "rotates tokens"); err != nil {
		return err
	}
	var req struct {
		TTL string `json:"ttl"`
	}
	if r.ContentLength != 0 || r.Header.Get("Content-Type") != "" {
		if err := decodeJSON(r, maxJSONBody, &req); err != nil {
			return err
		}
	}
	old, err := s.tokenByPath(r)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	var expires time.Time
	switch {
	case req.TTL != "":
		ttl, err := s.parseTTL(req.TTL, old.Role)
		if err != nil {
			return err
		}
		expires = now.Add(ttl)
	case !old.Expires.IsZero():
		// The same lifetime as the token it replaces.
		expires = now.Add(min(old.Expires.Sub(old.Created), s.maxTokenTTL()))
	}
	secret, t, err := RotateToken(r.Context(), s.control, old, now, expires, a.TokenID)
	if errors.Is(err, domicile.ErrVersionMismatch) {
		return domicile.Errorf(domicile.EConflict, "token %s is revoked; a revoked token is not rotated", old.ID)
	}
	if errors.Is(err, domicile.ErrNotFound) {
		return domicile.Errorf(domicile.ENotFound, "no token %q", old.ID)
	}
	if err != nil {
		return err
	}
	s.tokens.drop()
	s.log.InfoContext(r.Context(), "token rotated", slog.String("token", t.ID), slog.String("replaces", old.ID), slog.String("role", string(t.Role)), slog.String("by", a.TokenID))
	resp := tokenResponse(secret, t)
	resp.Replaces = old.ID
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *Server) controlLog(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if a.Role != domicile.RoleAdmin && a.Role != domicile.RoleAuditor {
		return domicile.Errorf(domicile.EForbidden, "only admin and auditor tokens read the control log")
	}
	q := r.URL.Query()
	var after int64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return domicile.FieldErrorf("after", "must be a sequence number, 0 or more")
		}
		after = n
	}
	limit := domicile.DefaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > domicile.MaxListLimit {
			return domicile.FieldErrorf("limit", "must be an integer from 1 to %d", domicile.MaxListLimit)
		}
		limit = n
	}
	evs, err := s.control.ControlLog(r.Context(), after, limit)
	if err != nil {
		return err
	}
	out := client.ControlLogPage{Events: evs}
	if out.Events == nil {
		out.Events = []domicile.ControlEvent{}
	}
	if len(evs) == limit {
		out.Next = evs[len(evs)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
