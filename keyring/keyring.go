// Package keyring manages the data keys of a cell's subjects: it creates
// each subject's key, keeps it only wrapped by the cell's key-encryption
// key (KEK) in the cell's key custody, unwraps it for each access with the
// access's justification, caches unwrapped keys for app and subject
// accesses only, re-wraps keys in bulk when the KEK rotates, and destroys
// them on erasure (crypto-shredding).
//
// Operator and authority accesses never use the cache: the custodian sees
// and rules on each of them.
package keyring

import (
	"container/list"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"domicile"
	"domicile/envelope"
	"domicile/kms"
)

// DefaultCacheSize is the default number of unwrapped keys kept.
const DefaultCacheSize = 100_000

// Config configures a Keyring.
type Config struct {
	Cell  string
	KEK   kms.KEK
	Store domicile.KeyStore
	// CacheSize bounds the cache of unwrapped keys; 0 means
	// DefaultCacheSize, negative disables it.
	CacheSize int
	Rand      io.Reader
	Now       func() time.Time
	// OnUnwrap, if set, is called after every KEK unwrap (cache miss or
	// uncached access) with its outcome, so the cell can log it.
	OnUnwrap func(ctx context.Context, a kms.Access, err error)
	// Logger receives every key custody error with its cause (which the
	// user is not shown); nil discards them.
	Logger *slog.Logger
}

// Keyring is safe for concurrent use.
type Keyring struct {
	cfg Config

	mu    sync.Mutex
	lru   *list.List
	items map[cacheKey]*list.Element
	hits  uint64
	miss  uint64
}

type cacheKey struct {
	ref domicile.SubjectRef
	gen uint8
}

type cacheEntry struct {
	k  cacheKey
	dk []byte
}

// New returns a keyring.
func New(cfg Config) *Keyring {
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Keyring{cfg: cfg, lru: list.New(), items: map[cacheKey]*list.Element{}}
}

// aad binds a wrapped key to its cell, subject and generation, so that a
// wrapped key moved to another subject does not unwrap.
func (k *Keyring) aad(ref domicile.SubjectRef, gen uint8) []byte {
	b := make([]byte, 0, 64+len(k.cfg.Cell))
	b = append(b, "domicile/data-key/v1\x00"...)
	b = append(b, k.cfg.Cell...)
	b = append(b, 0)
	b = append(b, ref[:]...)
	return append(b, gen)
}

// Create makes a new data key of generation gen for ref and stores it
// wrapped. The plaintext key stays in the cache only.
func (k *Keyring) Create(ctx context.Context, ref domicile.SubjectRef, gen uint8) error {
	w, dk, err := k.newKey(ctx, ref, gen, k.cfg.Now())
	if err != nil {
		return err
	}
	if err := k.cfg.Store.PutKey(ctx, w); err != nil {
		return err
	}
	k.put(cacheKey{ref, gen}, dk)
	return nil
}

// newKey draws a data key of generation gen for ref and wraps it under
// the KEK: what Create and CreateBatch store.
func (k *Keyring) newKey(ctx context.Context, ref domicile.SubjectRef, gen uint8, now time.Time) (domicile.WrappedKey, []byte, error) {
	dk := make([]byte, envelope.KeySize)
	if _, err := io.ReadFull(k.cfg.Rand, dk); err != nil {
		return domicile.WrappedKey{}, nil, fmt.Errorf("keyring: random: %w", err)
	}
	v, ct, err := k.cfg.KEK.Wrap(ctx, dk, k.aad(ref, gen))
	if err != nil {
		return domicile.WrappedKey{}, nil, k.custodyError(ctx, "wrap", err)
	}
	return domicile.WrappedKey{Ref: ref, Gen: gen, KEKVersion: v, Wrapped: ct, Fingerprint: envelope.Fingerprint(dk), Created: now}, dk, nil
}

// CreateBatch is Create for many subjects at once, for bulk loads: it
// makes a new data key of generation gen for each of refs and stores them
// wrapped in one write to custody, all or none (ErrVersionMismatch if
// one exists). It takes at most domicile.MaxKeysPerBatch refs.
func (k *Keyring) CreateBatch(ctx context.Context, refs []domicile.SubjectRef, gen uint8) error {
	if len(refs) > domicile.MaxKeysPerBatch {
		return domicile.Errorf(domicile.EInvalid, "keyring: %d keys in one batch, at most %d", len(refs), domicile.MaxKeysPerBatch)
	}
	ws := make([]domicile.WrappedKey, len(refs))
	dks := make([][]byte, len(refs))
	now := k.cfg.Now()
	for i, ref := range refs {
		w, dk, err := k.newKey(ctx, ref, gen, now)
		if err != nil {
			return err
		}
		ws[i], dks[i] = w, dk
	}
	if err := k.cfg.Store.PutKeys(ctx, ws); err != nil {
		return err
	}
	for i, ref := range refs {
		k.put(cacheKey{ref, gen}, dks[i])
	}
	return nil
}

func cacheable(a kms.Access) bool {
	return a.Role == kms.RoleApp || a.Role == kms.RoleSubject || a.Role == kms.RoleSystem
}

// DataKey returns the plaintext data key (ref, gen) for access a. The
// caller must not modify or keep it beyond the request.
func (k *Keyring) DataKey(ctx context.Context, a kms.Access, ref domicile.SubjectRef, gen uint8) ([]byte, error) {
	ck := cacheKey{ref, gen}
	useCache := cacheable(a) && k.cfg.CacheSize > 0
	if useCache {
		if dk, ok := k.get(ck); ok {
			return dk, nil
		}
	}
	w, err := k.cfg.Store.Key(ctx, ref, gen)
	if errors.Is(err, domicile.ErrNotFound) {
		return nil, domicile.Errorf(ENoKey, "the subject's data key is gone (erased)")
	}
	if err != nil {
		return nil, err
	}
	a.Subject = ref.String()
	dk, err := k.cfg.KEK.Unwrap(ctx, a, w.KEKVersion, w.Wrapped, k.aad(ref, gen))
	if k.cfg.OnUnwrap != nil {
		k.cfg.OnUnwrap(ctx, a, err)
	}
	if err != nil {
		return nil, k.custodyError(ctx, "unwrap", err)
	}
	if useCache {
		k.put(ck, dk)
	}
	return dk, nil
}

// ENoKey is the error code of an access to an erased subject's data.
const ENoKey = domicile.ENotFound

// custodyError logs a custodian failure of operation op with its cause,
// and maps it to a user error: down means 503 with Retry-After, refused
// means 403 naming the clause.
func (k *Keyring) custodyError(ctx context.Context, op string, err error) error {
	var denied *kms.DeniedError
	level := slog.LevelError
	if errors.As(err, &denied) {
		level = slog.LevelWarn
	}
	k.cfg.Logger.LogAttrs(ctx, level, "key custody error", slog.String("cell", k.cfg.Cell), slog.String("kek", k.cfg.KEK.ID()),
		slog.String("op", op), slog.Any("err", err))
	switch {
	case errors.Is(err, kms.ErrUnavailable):
		return &domicile.Error{Code: domicile.EUnavailable, Message: "the key custodian is unavailable; retry later", RetryAfter: 5}
	case errors.As(err, &denied):
		return &domicile.Error{Code: domicile.EForbidden, Message: "the key custodian refused access: " + denied.Error()}
	}
	return fmt.Errorf("keyring: %v", err)
}

// Erase destroys every data key of ref in custody and the cache, and
// returns their fingerprints.
func (k *Keyring) Erase(ctx context.Context, ref domicile.SubjectRef, maxGen uint8) ([]string, error) {
	var fps []string
	for g := 0; g <= int(maxGen); g++ {
		if w, err := k.cfg.Store.Key(ctx, ref, uint8(g)); err == nil {
			fps = append(fps, w.Fingerprint)
		}
	}
	k.mu.Lock()
	for g := 0; g <= int(maxGen); g++ {
		if e, ok := k.items[cacheKey{ref, uint8(g)}]; ok {
			clear(e.Value.(*cacheEntry).dk)
			k.lru.Remove(e)
			delete(k.items, cacheKey{ref, uint8(g)})
		}
	}
	k.mu.Unlock()
	if _, err := k.cfg.Store.DeleteKeys(ctx, ref); err != nil {
		return nil, err
	}
	return fps, nil
}

func (k *Keyring) get(ck cacheKey) ([]byte, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.items[ck]; ok {
		k.lru.MoveToFront(e)
		k.hits++
		return e.Value.(*cacheEntry).dk, true
	}
	k.miss++
	return nil, false
}

func (k *Keyring) put(ck cacheKey, dk []byte) {
	if k.cfg.CacheSize <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if e, ok := k.items[ck]; ok {
		k.lru.MoveToFront(e)
		return
	}
	k.items[ck] = k.lru.PushFront(&cacheEntry{k: ck, dk: dk})
	for k.lru.Len() > k.cfg.CacheSize {
		e := k.lru.Back()
		ent := e.Value.(*cacheEntry)
		k.lru.Remove(e)
		delete(k.items, ent.k)
	}
}

// CacheStats returns the cache's size, hits and misses.
func (k *Keyring) CacheStats() (size int, hits, misses uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lru.Len(), k.hits, k.miss
}

// RewrapProgress reports bulk re-wrapping.
type RewrapProgress struct {
	Done, Total int64
}

// Rewrap re-wraps every data key under a KEK version older than the
// current one to the current version, in batches, without touching any
// record. It is resumable: it only ever picks keys still under an old
// version, so a run killed midway is finished by the next. It returns the
// number of keys it re-wrapped.
func (k *Keyring) Rewrap(ctx context.Context, progress func(RewrapProgress)) (int64, error) {
	cur, _, err := k.cfg.KEK.Versions(ctx)
	if err != nil {
		return 0, k.custodyError(ctx, "versions", err)
	}
	counts, err := k.cfg.Store.CountByVersion(ctx)
	if err != nil {
		return 0, err
	}
	var total int64
	for v, n := range counts {
		if v < cur {
			total += n
		}
	}
	var done int64
	for {
		// Re-wrapped keys leave the selection, so each batch starts from
		// the beginning: no cursor to lose on a crash.
		keys, err := k.cfg.Store.KeysBelow(ctx, cur, domicile.SubjectRef{}, 256)
		if err != nil {
			return done, err
		}
		if len(keys) == 0 {
			break
		}
		for _, w := range keys {
			if err := ctx.Err(); err != nil {
				return done, err
			}
			a := kms.Access{Cell: k.cfg.Cell, Role: kms.RoleSystem, Reason: kms.ReasonRewrap, Subject: w.Ref.String()}
			aad := k.aad(w.Ref, w.Gen)
			dk, err := k.cfg.KEK.Unwrap(ctx, a, w.KEKVersion, w.Wrapped, aad)
			if err != nil {
				return done, k.custodyError(ctx, "rewrap-unwrap", err)
			}
			v, ct, err := k.cfg.KEK.Wrap(ctx, dk, aad)
			clear(dk)
			if err != nil {
				return done, k.custodyError(ctx, "rewrap-wrap", err)
			}
			from := w.KEKVersion
			w.KEKVersion, w.Wrapped = v, ct
			if err := k.cfg.Store.ReplaceKey(ctx, w, from); err != nil && !errors.Is(err, domicile.ErrVersionMismatch) {
				return done, err
			}
			done++
		}
		if progress != nil {
			progress(RewrapProgress{Done: done, Total: total})
		}
	}
	return done, nil
}

// KEKID returns the id of the cell's KEK.
func (k *Keyring) KEKID() string { return k.cfg.KEK.ID() }

// Versions returns the KEK's current and usable versions.
func (k *Keyring) Versions(ctx context.Context) (uint32, []uint32, error) {
	cur, all, err := k.cfg.KEK.Versions(ctx)
	if err != nil {
		return 0, nil, k.custodyError(ctx, "versions", err)
	}
	return cur, all, nil
}

// Counts returns how many data keys each KEK version wraps.
func (k *Keyring) Counts(ctx context.Context) (map[uint32]int64, error) {
	return k.cfg.Store.CountByVersion(ctx)
}

// Rotate introduces a new KEK version; new keys are wrapped under it.
func (k *Keyring) Rotate(ctx context.Context) (uint32, error) {
	v, err := k.cfg.KEK.Rotate(ctx)
	if err != nil {
		return 0, k.custodyError(ctx, "rotate", err)
	}
	return v, nil
}

// RetireUnused retires every KEK version below the current one that no
// key uses any longer, and returns them.
func (k *Keyring) RetireUnused(ctx context.Context) ([]uint32, error) {
	cur, all, err := k.cfg.KEK.Versions(ctx)
	if err != nil {
		return nil, k.custodyError(ctx, "versions", err)
	}
	counts, err := k.cfg.Store.CountByVersion(ctx)
	if err != nil {
		return nil, err
	}
	var retired []uint32
	for _, v := range all {
		if v < cur && counts[v] == 0 {
			if err := k.cfg.KEK.Retire(ctx, v); err != nil {
				return retired, k.custodyError(ctx, "retire", err)
			}
			retired = append(retired, v)
		}
	}
	return retired, nil
}

// Adopt stores dk, a data key of generation gen that ref brought from
// another cell, wrapped under this cell's KEK: the key keeps its
// fingerprint, so what was sealed under it opens here. Adopting the same
// key again is not an error; a different key under (ref, gen) is.
func (k *Keyring) Adopt(ctx context.Context, ref domicile.SubjectRef, gen uint8, dk []byte) error {
	if len(dk) != envelope.KeySize {
		return errors.New("keyring: adopt: malformed data key")
	}
	fp := envelope.Fingerprint(dk)
	if w, err := k.cfg.Store.Key(ctx, ref, gen); err == nil {
		if w.Fingerprint != fp {
			return fmt.Errorf("keyring: adopt: subject already holds another key of generation %d", gen)
		}
		return nil
	} else if !errors.Is(err, domicile.ErrNotFound) {
		return err
	}
	v, ct, err := k.cfg.KEK.Wrap(ctx, dk, k.aad(ref, gen))
	if err != nil {
		return k.custodyError(ctx, "wrap", err)
	}
	w := domicile.WrappedKey{Ref: ref, Gen: gen, KEKVersion: v, Wrapped: ct, Fingerprint: fp, Created: k.cfg.Now()}
	if err := k.cfg.Store.PutKey(ctx, w); err != nil {
		if w2, err2 := k.cfg.Store.Key(ctx, ref, gen); err2 == nil && w2.Fingerprint == fp {
			return nil // adopted concurrently
		}
		return err
	}
	return nil
}

// Has reports whether custody holds any data key of ref up to
// generation maxGen.
func (k *Keyring) Has(ctx context.Context, ref domicile.SubjectRef, maxGen uint8) (bool, error) {
	for g := 0; g <= int(maxGen); g++ {
		_, err := k.cfg.Store.Key(ctx, ref, uint8(g))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, domicile.ErrNotFound) {
			return false, err
		}
	}
	return false, nil
}

// WrapSecret wraps a small secret of the cell (not a subject's data key)
// under the KEK, bound to label; UnwrapSecret opens it for access a.
func (k *Keyring) WrapSecret(ctx context.Context, label string, secret []byte) (uint32, []byte, error) {
	v, ct, err := k.cfg.KEK.Wrap(ctx, secret, k.secretAAD(label))
	if err != nil {
		return 0, nil, k.custodyError(ctx, "wrap", err)
	}
	return v, ct, nil
}

// UnwrapSecret opens a secret WrapSecret wrapped.
func (k *Keyring) UnwrapSecret(ctx context.Context, a kms.Access, label string, version uint32, ct []byte) ([]byte, error) {
	pt, err := k.cfg.KEK.Unwrap(ctx, a, version, ct, k.secretAAD(label))
	if err != nil {
		return nil, k.custodyError(ctx, "unwrap", err)
	}
	return pt, nil
}

func (k *Keyring) secretAAD(label string) []byte {
	return []byte("domicile/cell-secret/v1\x00" + k.cfg.Cell + "\x00" + label)
}
