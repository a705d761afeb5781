//go:build cgo

package pkcs11kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/pkcs11"

	"domicile/kms"
)

const (
	ivBytes  = 12
	tagBits  = 128
	keyBytes = 32
	// maxObjects bounds how many key objects a listing reads.
	maxObjects = 100000
)

// KEK is a key-encryption key held in a PKCS#11 token. It is safe for
// concurrent use. Close it to release its sessions.
type KEK struct {
	cfg    Config
	id     string
	mod    *module
	slot   uint
	rand   io.Reader
	pool   chan pkcs11.SessionHandle
	closed chan struct{}

	// rotMu serialises Rotate and Retire within the process.
	rotMu sync.Mutex

	// mu guards the fields below.
	mu      sync.RWMutex
	handles map[uint32]pkcs11.ObjectHandle
	current uint32

	closeOnce sync.Once
}

var _ kms.KEK = (*KEK)(nil)

// module is a loaded PKCS#11 library, shared by every KEK of the process that
// uses it: C_Initialize may be called only once per library.
type module struct {
	path string
	ctx  *pkcs11.Ctx
	refs int
}

var (
	modulesMu sync.Mutex
	modules   = map[string]*module{}
)

func loadModule(path string) (*module, error) {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if m := modules[path]; m != nil {
		m.refs++
		return m, nil
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("pkcs11kms: cannot load PKCS#11 module %s", path)
	}
	if err := ctx.Initialize(); err != nil && !isCode(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		ctx.Destroy()
		return nil, fmt.Errorf("pkcs11kms: initialise %s: %v", path, err)
	}
	m := &module{path: path, ctx: ctx, refs: 1}
	modules[path] = m
	return m, nil
}

func (m *module) release() {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	m.refs--
	if m.refs > 0 {
		return
	}
	delete(modules, m.path)
	m.ctx.Finalize()
	m.ctx.Destroy()
}

func isCode(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// Open connects to the token, logs in, and loads the KEK's versions, creating
// version 1 if the token holds none with this prefix. The caller must Close it.
func Open(ctx context.Context, cfg Config) (*KEK, error) {
	switch {
	case cfg.Module == "":
		return nil, errors.New("pkcs11kms: no module path")
	case cfg.TokenLabel == "":
		return nil, errors.New("pkcs11kms: no token label")
	case cfg.KeyLabelPrefix == "":
		return nil, errors.New("pkcs11kms: no key label prefix")
	}
	if cfg.ID == "" {
		cfg.ID = cfg.KeyLabelPrefix
	}
	if cfg.Sessions <= 0 {
		cfg.Sessions = 4
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mod, err := loadModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	k := &KEK{
		cfg:     cfg,
		id:      cfg.ID,
		mod:     mod,
		rand:    cfg.Rand,
		pool:    make(chan pkcs11.SessionHandle, cfg.Sessions),
		closed:  make(chan struct{}),
		handles: map[uint32]pkcs11.ObjectHandle{},
	}
	if err := k.init(ctx); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

func (k *KEK) init(ctx context.Context) error {
	p := k.mod.ctx
	slots, err := p.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("pkcs11kms: list slots: %v", err)
	}
	found := false
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err == nil && strings.TrimRight(ti.Label, " \x00") == k.cfg.TokenLabel {
			k.slot, found = s, true
			break
		}
	}
	if !found {
		return fmt.Errorf("pkcs11kms: no token labelled %q in %s", k.cfg.TokenLabel, k.cfg.Module)
	}
	mechs, err := p.GetMechanismList(k.slot)
	if err != nil {
		return fmt.Errorf("pkcs11kms: list mechanisms: %v", err)
	}
	if !slices.ContainsFunc(mechs, func(m *pkcs11.Mechanism) bool { return m.Mechanism == pkcs11.CKM_AES_GCM }) {
		return fmt.Errorf("pkcs11kms: token %q does not offer CKM_AES_GCM", k.cfg.TokenLabel)
	}
	for range k.cfg.Sessions {
		s, err := k.openSession()
		if err != nil {
			return err
		}
		k.pool <- s
	}
	if _, err := k.refresh(ctx); err != nil {
		return err
	}
	k.mu.RLock()
	empty := k.current == 0
	k.mu.RUnlock()
	if empty {
		if _, err := k.Rotate(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (k *KEK) openSession() (pkcs11.SessionHandle, error) {
	p := k.mod.ctx
	s, err := p.OpenSession(k.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return 0, fmt.Errorf("%w: pkcs11 open session: %v", kms.ErrUnavailable, err)
	}
	// Login state is shared by all sessions of the application.
	if err := p.Login(s, pkcs11.CKU_USER, k.cfg.PIN); err != nil && !isCode(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		p.CloseSession(s)
		if isCode(err, pkcs11.CKR_PIN_INCORRECT) || isCode(err, pkcs11.CKR_PIN_LOCKED) {
			return 0, fmt.Errorf("pkcs11kms: login to token %q: %v", k.cfg.TokenLabel, err)
		}
		return 0, fmt.Errorf("%w: pkcs11 login: %v", kms.ErrUnavailable, err)
	}
	return s, nil
}

// Close returns the KEK's sessions to the token. It is safe to call twice.
func (k *KEK) Close() error {
	k.closeOnce.Do(func() {
		close(k.closed)
		for {
			select {
			case s := <-k.pool:
				k.mod.ctx.CloseSession(s)
				continue
			default:
			}
			break
		}
		k.mod.release()
	})
	return nil
}

// ID implements kms.KEK.
func (k *KEK) ID() string { return k.id }

// withSession runs f with a session from the pool. A session that failed at
// the session level is replaced.
func (k *KEK) withSession(ctx context.Context, f func(s pkcs11.SessionHandle) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(k.cfg.Timeout)
	defer t.Stop()
	var s pkcs11.SessionHandle
	select {
	case s = <-k.pool:
	case <-k.closed:
		return errors.New("pkcs11kms: KEK is closed")
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%w: no free PKCS#11 session within %v", kms.ErrUnavailable, k.cfg.Timeout)
	}
	err := f(s)
	if isSessionLost(err) {
		k.mod.ctx.CloseSession(s)
		ns, nerr := k.openSession()
		if nerr != nil {
			// Keep the pool size: put back the broken handle; the next
			// borrower will try to replace it again.
			ns = s
		}
		s = ns
		err = fmt.Errorf("%w: %v", kms.ErrUnavailable, err)
	}
	select {
	case <-k.closed:
		k.mod.ctx.CloseSession(s)
	default:
		k.pool <- s
	}
	return err
}

func isSessionLost(err error) bool {
	for _, c := range []uint{pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_TOKEN_NOT_PRESENT,
		pkcs11.CKR_USER_NOT_LOGGED_IN} {
		if isCode(err, c) {
			return true
		}
	}
	return false
}

func (k *KEK) label(v uint32) string {
	return k.cfg.KeyLabelPrefix + "-v" + strconv.FormatUint(uint64(v), 10)
}

// parseLabel returns N for a label "<prefix>-v<N>" in canonical decimal.
func (k *KEK) parseLabel(l string) (uint32, bool) {
	rest, ok := strings.CutPrefix(l, k.cfg.KeyLabelPrefix+"-v")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != rest {
		return 0, false
	}
	return uint32(n), true
}

// refresh lists the token's key objects for this prefix and installs them.
func (k *KEK) refresh(ctx context.Context) (map[uint32]pkcs11.ObjectHandle, error) {
	found := map[uint32]pkcs11.ObjectHandle{}
	err := k.withSession(ctx, func(s pkcs11.SessionHandle) error {
		p := k.mod.ctx
		tmpl := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		}
		if err := p.FindObjectsInit(s, tmpl); err != nil {
			return fmt.Errorf("pkcs11kms: find keys: %w", err)
		}
		var objs []pkcs11.ObjectHandle
		for len(objs) < maxObjects {
			batch, _, err := p.FindObjects(s, 256)
			if err != nil {
				p.FindObjectsFinal(s)
				return fmt.Errorf("pkcs11kms: find keys: %w", err)
			}
			if len(batch) == 0 {
				break
			}
			objs = append(objs, batch...)
		}
		if err := p.FindObjectsFinal(s); err != nil {
			return fmt.Errorf("pkcs11kms: find keys: %w", err)
		}
		for _, o := range objs {
			attrs, err := p.GetAttributeValue(s, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil)})
			if err != nil || len(attrs) != 1 {
				continue
			}
			if v, ok := k.parseLabel(string(attrs[0].Value)); ok {
				found[v] = o
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var cur uint32
	for v := range found {
		cur = max(cur, v)
	}
	k.mu.Lock()
	k.handles, k.current = found, cur
	k.mu.Unlock()
	return found, nil
}

// Wrap implements kms.KEK.
func (k *KEK) Wrap(ctx context.Context, plaintext, aad []byte) (uint32, []byte, error) {
	if err := kms.CheckWrap(plaintext, aad); err != nil {
		return 0, nil, err
	}
	k.mu.RLock()
	v, h := k.current, k.handles[k.current]
	k.mu.RUnlock()
	iv := make([]byte, ivBytes)
	if _, err := io.ReadFull(k.rand, iv); err != nil {
		return 0, nil, fmt.Errorf("pkcs11kms: iv: %v", err)
	}
	var out []byte
	err := k.withSession(ctx, func(s pkcs11.SessionHandle) error {
		params := pkcs11.NewGCMParams(iv, aad, tagBits)
		defer params.Free()
		if err := k.mod.ctx.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return fmt.Errorf("pkcs11kms: encrypt: %w", err)
		}
		ct, err := k.mod.ctx.Encrypt(s, plaintext)
		if err != nil {
			return fmt.Errorf("pkcs11kms: encrypt: %w", err)
		}
		out = append(iv, ct...)
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	if len(out) != ivBytes+len(plaintext)+tagBits/8 {
		return 0, nil, fmt.Errorf("pkcs11kms: token returned %d bytes of ciphertext for %d of plaintext", len(out)-ivBytes, len(plaintext))
	}
	return v, out, nil
}

// Unwrap implements kms.KEK. It validates a but applies no policy: the token's
// PIN is the only gate.
func (k *KEK) Unwrap(ctx context.Context, a kms.Access, version uint32, ciphertext, aad []byte) ([]byte, error) {
	if err := kms.CheckUnwrap(a, version, ciphertext, aad); err != nil {
		return nil, err
	}
	h, err := k.handle(ctx, version)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < ivBytes+tagBits/8 {
		return nil, fmt.Errorf("%w: too short", kms.ErrInvalidCiphertext)
	}
	var pt []byte
	err = k.withSession(ctx, func(s pkcs11.SessionHandle) error {
		params := pkcs11.NewGCMParams(ciphertext[:ivBytes], aad, tagBits)
		defer params.Free()
		if err := k.mod.ctx.DecryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return fmt.Errorf("pkcs11kms: decrypt: %w", err)
		}
		out, err := k.mod.ctx.Decrypt(s, ciphertext[ivBytes:])
		if err != nil {
			if isCode(err, pkcs11.CKR_ENCRYPTED_DATA_INVALID) || isCode(err, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE) {
				return kms.ErrInvalidCiphertext
			}
			if isCode(err, pkcs11.CKR_GENERAL_ERROR) {
				// SoftHSM2 reports a GCM tag mismatch as CKR_GENERAL_ERROR,
				// which also means a failing token. Tell them apart with a
				// known-answer round trip under the same key.
				if perr := k.probe(s, h); perr != nil {
					return fmt.Errorf("%w: pkcs11 decrypt: %v; probe: %v", kms.ErrUnavailable, err, perr)
				}
				return kms.ErrInvalidCiphertext
			}
			return fmt.Errorf("pkcs11kms: decrypt: %w", err)
		}
		pt = out
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pt, nil
}

// probe encrypts and decrypts a fixed block under h in session s, to check
// that the token and key work.
func (k *KEK) probe(s pkcs11.SessionHandle, h pkcs11.ObjectHandle) error {
	p := k.mod.ctx
	iv := make([]byte, ivBytes)
	if _, err := io.ReadFull(k.rand, iv); err != nil {
		return err
	}
	block := []byte("domicile-probe--")
	enc := pkcs11.NewGCMParams(iv, nil, tagBits)
	defer enc.Free()
	if err := p.EncryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, enc)}, h); err != nil {
		return err
	}
	ct, err := p.Encrypt(s, block)
	if err != nil {
		return err
	}
	dec := pkcs11.NewGCMParams(iv, nil, tagBits)
	defer dec.Free()
	if err := p.DecryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, dec)}, h); err != nil {
		return err
	}
	pt, err := p.Decrypt(s, ct)
	if err != nil {
		return err
	}
	if !bytes.Equal(pt, block) {
		return errors.New("probe round trip mismatch")
	}
	return nil
}

// handle returns the object handle of version, refreshing the listing once if
// the version is not known (another process may have rotated).
func (k *KEK) handle(ctx context.Context, version uint32) (pkcs11.ObjectHandle, error) {
	k.mu.RLock()
	h, ok := k.handles[version]
	cur := k.current
	k.mu.RUnlock()
	if ok {
		return h, nil
	}
	if version > cur {
		found, err := k.refresh(ctx)
		if err != nil {
			return 0, err
		}
		if h, ok := found[version]; ok {
			return h, nil
		}
		k.mu.RLock()
		cur = k.current
		k.mu.RUnlock()
	}
	problem := "unknown"
	if version < cur {
		problem = "retired"
	}
	return 0, &kms.VersionError{KEK: k.id, Version: version, Problem: problem}
}

// Rotate implements kms.KEK: it generates a new AES-256 key object inside the
// token, labelled with the next version.
func (k *KEK) Rotate(ctx context.Context) (uint32, error) {
	k.rotMu.Lock()
	defer k.rotMu.Unlock()
	found, err := k.refresh(ctx)
	if err != nil {
		return 0, err
	}
	var next uint32 = 1
	for v := range found {
		next = max(next, v+1)
	}
	if next == 0 {
		return 0, errors.New("pkcs11kms: version numbers exhausted")
	}
	label := k.label(next)
	var h pkcs11.ObjectHandle
	err = k.withSession(ctx, func(s pkcs11.SessionHandle) error {
		tmpl := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, keyBytes),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
			pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, []byte(label)),
		}
		var err error
		h, err = k.mod.ctx.GenerateKey(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl)
		if err != nil {
			return fmt.Errorf("pkcs11kms: generate key %s: %w", label, err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	k.mu.Lock()
	k.handles[next] = h
	k.current = next
	k.mu.Unlock()
	return next, nil
}

// Versions implements kms.KEK. It reads the token's current listing.
func (k *KEK) Versions(ctx context.Context) (uint32, []uint32, error) {
	found, err := k.refresh(ctx)
	if err != nil {
		return 0, nil, err
	}
	var cur uint32
	all := make([]uint32, 0, len(found))
	for v := range found {
		all = append(all, v)
		cur = max(cur, v)
	}
	slices.Sort(all)
	return cur, all, nil
}

// Retire implements kms.KEK: it destroys version's key object in the token.
// Token backups made before still hold it.
func (k *KEK) Retire(ctx context.Context, version uint32) error {
	k.rotMu.Lock()
	defer k.rotMu.Unlock()
	found, err := k.refresh(ctx)
	if err != nil {
		return err
	}
	var cur uint32
	for v := range found {
		cur = max(cur, v)
	}
	h, ok := found[version]
	switch {
	case version == cur:
		return &kms.VersionError{KEK: k.id, Version: version, Problem: "current"}
	case !ok && version < cur:
		return &kms.VersionError{KEK: k.id, Version: version, Problem: "retired"}
	case !ok:
		return &kms.VersionError{KEK: k.id, Version: version, Problem: "unknown"}
	}
	err = k.withSession(ctx, func(s pkcs11.SessionHandle) error {
		if err := k.mod.ctx.DestroyObject(s, h); err != nil {
			return fmt.Errorf("pkcs11kms: destroy %s: %w", k.label(version), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	k.mu.Lock()
	delete(k.handles, version)
	k.mu.Unlock()
	return nil
}
