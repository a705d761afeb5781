package cell

// The cell's side of a migration: the one narrow, logged path by which a
// subject's sealed data leaves this cell for another cell of the
// deployment (MigrateOut), arrives in one (MigrateIn), and is
// crypto-shredded where it was (Shred). Nothing here returns plaintext:
// records and objects travel sealed, data keys travel sealed with HPKE
// (RFC 9180) to the target cell's migration key, whose private half is
// kept wrapped by the target cell's own key-encryption key. The target
// opens each ciphertext under the source's binding and seals it again
// under its own, with the same data key, inside its own custody boundary.

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"

	"domicile"
	"domicile/envelope"
	"domicile/kms"
)

// Parcel is one subject's data as it moves from one cell to another:
// sealed rows, sealed blobs and data keys sealed to the target cell. It
// holds no plaintext and no key in the clear.
type Parcel struct {
	Plan    string
	From    string
	To      string
	Subject domicile.StoredSubject
	Keys    []ParcelKey
	Records []domicile.StoredRecord
	Objects []ParcelObject
	// Digest is the source's digest of the subject's data (SubjectDigest).
	Digest string
	// Bytes is the size of the sealed records and objects.
	Bytes int64
	// OutIndex is the log index of the source's migrate-out event.
	OutIndex int64
}

// ParcelKey is one data key generation sealed with HPKE to the target
// cell's migration key.
type ParcelKey struct {
	Gen         uint8
	Fingerprint string
	Sealed      []byte
}

// ParcelObject is an object's row and its sealed content.
type ParcelObject struct {
	Row    domicile.StoredObject
	Sealed []byte
}

// MovedError is the answer of a cell to an access to a subject that has
// moved to another cell: the caller locates the subject again and
// retries there.
type MovedError struct{ To string }

func (e *MovedError) Error() string {
	return "the subject has moved to cell " + e.To + "; locate it again"
}

// Unwrap makes a MovedError that reaches a client a 503 with Retry-After.
func (e *MovedError) Unwrap() error {
	return &domicile.Error{Code: domicile.EUnavailable, Message: "the subject has just moved to another cell; retry", RetryAfter: 1}
}

// MaxHold bounds how long a write to a subject in flight waits for the
// subject's switch to another cell.
const MaxHold = time.Second

// moves is a cell's state of subjects in flight: writes held while a
// subject switches, writes under way, and subjects that moved out.
type moves struct {
	mu       sync.Mutex
	held     map[domicile.SubjectRef]chan struct{}
	inflight map[domicile.SubjectRef]int
	moved    map[domicile.SubjectRef]string
	// migration key, once opened
	kmu  sync.Mutex
	priv hpke.PrivateKey
}

func (m *moves) init() {
	if m.held == nil {
		m.held = map[domicile.SubjectRef]chan struct{}{}
		m.inflight = map[domicile.SubjectRef]int{}
		m.moved = map[domicile.SubjectRef]string{}
	}
}

// checkMoved returns a MovedError for a subject that moved out.
func (c *Cell) checkMoved(ref domicile.SubjectRef) error {
	c.mv.mu.Lock()
	defer c.mv.mu.Unlock()
	if to, ok := c.mv.moved[ref]; ok {
		return &MovedError{To: to}
	}
	return nil
}

// enterWrite admits a write to subject ref: it waits while the subject is
// held for its switch (at most MaxHold), refuses a subject that moved out
// and counts the write as under way until release is called.
func (c *Cell) enterWrite(ctx context.Context, ref domicile.SubjectRef) (release func(), err error) {
	// The timer is made only when the write has to wait: almost every
	// write goes straight through.
	var deadline <-chan time.Time
	for {
		c.mv.mu.Lock()
		c.mv.init()
		if to, ok := c.mv.moved[ref]; ok {
			c.mv.mu.Unlock()
			return nil, &MovedError{To: to}
		}
		ch, held := c.mv.held[ref]
		if !held {
			c.mv.inflight[ref]++
			c.mv.mu.Unlock()
			return func() {
				c.mv.mu.Lock()
				if c.mv.inflight[ref]--; c.mv.inflight[ref] <= 0 {
					delete(c.mv.inflight, ref)
				}
				c.mv.mu.Unlock()
			}, nil
		}
		c.mv.mu.Unlock()
		if deadline == nil {
			t := time.NewTimer(MaxHold)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, &domicile.Error{Code: domicile.EUnavailable, Message: "the subject is moving to another cell; retry", RetryAfter: 1}
		}
	}
}

// Hold holds new writes to subject ref and waits (at most wait) until
// the writes under way finish, for the subject's switch to another cell.
// The caller must call the returned release: with the target cell's id
// once the directory names it (the cell then refuses the subject with a
// MovedError), or with "" to let writes go on here.
func (c *Cell) Hold(ctx context.Context, ref domicile.SubjectRef, wait time.Duration) (release func(movedTo string), err error) {
	c.mv.mu.Lock()
	c.mv.init()
	if _, ok := c.mv.held[ref]; ok {
		c.mv.mu.Unlock()
		return nil, fmt.Errorf("cell %s: subject already held", c.id)
	}
	ch := make(chan struct{})
	c.mv.held[ref] = ch
	c.mv.mu.Unlock()
	rel := func(movedTo string) {
		c.mv.mu.Lock()
		if movedTo != "" {
			c.mv.moved[ref] = movedTo
		}
		delete(c.mv.held, ref)
		c.mv.mu.Unlock()
		close(ch)
	}
	end := time.Now().Add(wait)
	for {
		c.mv.mu.Lock()
		n := c.mv.inflight[ref]
		c.mv.mu.Unlock()
		if n == 0 {
			return rel, nil
		}
		if time.Now().After(end) || ctx.Err() != nil {
			rel("")
			return nil, &domicile.Error{Code: domicile.EUnavailable, Message: "writes to the subject did not finish in time for its switch", RetryAfter: 1}
		}
		time.Sleep(time.Millisecond)
	}
}

// MarkMoved records that subject ref lives in cell to now: accesses here
// are refused with a MovedError. A migration resumed after a restart
// calls it for the subjects it switched.
func (c *Cell) MarkMoved(ref domicile.SubjectRef, to string) {
	c.mv.mu.Lock()
	c.mv.init()
	c.mv.moved[ref] = to
	c.mv.mu.Unlock()
}

// migrationActor is the system acting for a migration plan.
func migrationActor(plan string) domicile.Actor {
	return domicile.Actor{Role: domicile.RoleSystem, Reference: plan}
}

func (c *Cell) migrationAccess(plan string, ref domicile.SubjectRef) kms.Access {
	return kms.Access{Cell: c.id, Role: kms.RoleSystem, Reason: kms.ReasonMigration, Reference: truncate(plan, 200), Subject: ref.String()}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// migrationKeyMeta is where a cell keeps its migration key, wrapped.
const migrationKeyMeta = "migrate/hpke-key"

// migrationKEM is the HPKE suite of data keys moving between cells: the
// hybrid ML-KEM-768 + X25519 KEM, HKDF-SHA256, AES-256-GCM.
var migrationKEM = hpke.MLKEM768X25519()

type storedMigrationKey struct {
	Version uint32 `json:"v"`
	Wrapped []byte `json:"wrapped"`
	Public  []byte `json:"public"`
}

// MigrationKey returns the public half of this cell's migration key,
// creating the key on first use. Its private half is stored only wrapped
// by the cell's KEK, and is opened by the KEK's custodian.
func (c *Cell) MigrationKey(ctx context.Context) ([]byte, error) {
	priv, err := c.migrationKey(ctx)
	if err != nil {
		return nil, err
	}
	return priv.PublicKey().Bytes(), nil
}

func (c *Cell) migrationKey(ctx context.Context) (hpke.PrivateKey, error) {
	c.mv.kmu.Lock()
	defer c.mv.kmu.Unlock()
	if c.mv.priv != nil {
		return c.mv.priv, nil
	}
	raw, err := c.store.Meta(ctx, migrationKeyMeta)
	if errors.Is(err, domicile.ErrNotFound) || (err == nil && raw == nil) {
		priv, err := migrationKEM.GenerateKey()
		if err != nil {
			return nil, err
		}
		b, err := priv.Bytes()
		if err != nil {
			return nil, err
		}
		v, ct, err := c.keys.WrapSecret(ctx, "migration", b)
		clear(b)
		if err != nil {
			return nil, err
		}
		enc, _ := json.Marshal(storedMigrationKey{Version: v, Wrapped: ct, Public: priv.PublicKey().Bytes()})
		if err := c.store.PutMeta(ctx, migrationKeyMeta, enc); err != nil {
			return nil, err
		}
		c.mv.priv = priv
		return priv, nil
	}
	if err != nil {
		return nil, err
	}
	var st storedMigrationKey
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("cell %s: malformed migration key", c.id)
	}
	b, err := c.keys.UnwrapSecret(ctx, kms.Access{Cell: c.id, Role: kms.RoleSystem, Reason: kms.ReasonMigration}, "migration", st.Version, st.Wrapped)
	if err != nil {
		return nil, err
	}
	priv, err := migrationKEM.NewPrivateKey(b)
	clear(b)
	if err != nil {
		return nil, fmt.Errorf("cell %s: migration key: %v", c.id, err)
	}
	c.mv.priv = priv
	return priv, nil
}

// keyInfo is the HPKE info of a data key moving: it binds the plan, both
// cells, the subject and the generation, so a sealed key opens only for
// the move it was made for.
func keyInfo(plan, from, to string, ref domicile.SubjectRef, gen uint8) []byte {
	return []byte("domicile/migrate-key/v1\x00" + plan + "\x00" + from + "\x00" + to + "\x00" + ref.String() + "\x00" + strconv.Itoa(int(gen)))
}

// MigrateOut hands subject ref's data to cell to for migration plan plan:
// every live record and object as sealed here, and each data key sealed
// with HPKE to pub, the target cell's migration key. It computes the
// subject's digest here (SubjectDigest) and logs one migrate-out event
// naming the plan, the target and the digest, durable before the parcel
// is returned. The subject stays here, and its home too: only the switch
// moves it.
func (c *Cell) MigrateOut(ctx context.Context, plan string, ref domicile.SubjectRef, to string, pub []byte) (*Parcel, error) {
	if err := c.checkMoved(ref); err != nil {
		return nil, err
	}
	pk, err := migrationKEM.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("cell %s: target migration key: %v", c.id, err)
	}
	x := &Access{c: c, actor: migrationActor(plan), sub: SubjectKey{Ref: ref}, act: domicile.ActMigrateOut, res: "subject"}
	sub, err := c.locate(ctx, x.sub)
	if err != nil {
		return nil, err
	}
	x.stored = sub
	p := &Parcel{Plan: plan, From: c.id, To: to, Subject: *sub}
	keys := map[uint8][]byte{}
	for g := 0; g <= int(sub.KeyGen); g++ {
		dk, err := c.keys.DataKey(context.WithValue(ctx, reqKey{}, x), c.migrationAccess(plan, ref), ref, uint8(g))
		if domicile.ErrorCode(err) == domicile.ENotFound {
			continue
		}
		if err != nil {
			return nil, x.deny(ctx, err)
		}
		keys[uint8(g)] = dk
		sealed, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), keyInfo(plan, c.id, to, ref, uint8(g)), dk)
		if err != nil {
			return nil, err
		}
		p.Keys = append(p.Keys, ParcelKey{Gen: uint8(g), Fingerprint: envelope.Fingerprint(dk), Sealed: sealed})
	}
	if err := c.eachRecord(ctx, ref, "", func(r *domicile.StoredRecord) error {
		p.Records = append(p.Records, *r)
		p.Bytes += int64(len(r.Body))
		return nil
	}); err != nil {
		return nil, err
	}
	if err := c.eachObject(ctx, ref, func(o *domicile.StoredObject) error {
		if o.Blob == "" {
			return nil
		}
		b, err := c.readBlob(ctx, o.Blob)
		if err != nil {
			return err
		}
		p.Objects = append(p.Objects, ParcelObject{Row: *o, Sealed: b})
		p.Bytes += int64(len(b))
		return nil
	}); err != nil {
		return nil, err
	}
	d, err := SubjectDigest(c.id, ref, sub.KeyGen, keys, p.Records, p.Objects)
	if err != nil {
		return nil, x.deny(ctx, domicile.Errorf(domicile.EInternal, "the subject's data does not open here: %v", err))
	}
	p.Digest = d
	detail := fmt.Sprintf("copy plan=%s to=%s digest=%s records=%d objects=%d", plan, to, d, len(p.Records), len(p.Objects))
	le, err := x.allow(ctx, detail)
	if err != nil {
		return nil, logFailure(c, err)
	}
	p.OutIndex = le.Index
	return p, nil
}

func (c *Cell) readBlob(ctx context.Context, key string) ([]byte, error) {
	br, err := c.store.Blobs().Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	b := make([]byte, br.Size())
	if _, err := br.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// Digest reports subject ref's digest as held here, and whether the
// subject is here at all. It reads nothing but to hash, and logs no
// event: the digest reveals nothing without the subject's key, and the
// migration logs its steps (migrate-out, migrate-in) with their digests.
func (c *Cell) Digest(ctx context.Context, plan string, ref domicile.SubjectRef) (string, bool, error) {
	sub, err := c.store.Subject(ctx, ref)
	if errors.Is(err, domicile.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	keys := map[uint8][]byte{}
	for g := 0; g <= int(sub.KeyGen); g++ {
		dk, err := c.keys.DataKey(ctx, c.migrationAccess(plan, ref), ref, uint8(g))
		if domicile.ErrorCode(err) == domicile.ENotFound {
			continue
		}
		if err != nil {
			return "", true, err
		}
		keys[uint8(g)] = dk
	}
	if _, ok := keys[sub.KeyGen]; !ok {
		// A copy whose keys are gone (a shredding interrupted between
		// custody and rows): it matches nothing, and is discarded.
		return "", true, nil
	}
	var recs []domicile.StoredRecord
	var objs []ParcelObject
	if err := c.eachRecord(ctx, ref, "", func(r *domicile.StoredRecord) error { recs = append(recs, *r); return nil }); err != nil {
		return "", true, err
	}
	if err := c.eachObject(ctx, ref, func(o *domicile.StoredObject) error {
		if o.Blob == "" {
			return nil
		}
		b, err := c.readBlob(ctx, o.Blob)
		if err != nil {
			return err
		}
		objs = append(objs, ParcelObject{Row: *o, Sealed: b})
		return nil
	}); err != nil {
		return "", true, err
	}
	d, err := SubjectDigest(c.id, ref, sub.KeyGen, keys, recs, objs)
	return d, true, err
}

// SubjectDigest is the digest of a subject's data as cell holds it:
//
//	key    = HKDF-SHA256(ikm = the subject's current data key, salt = none,
//	                     info = "domicile/migrate-digest/v1" || ref)
//	line   = "r" 0x00 kind 0x00 id 0x00 version 0x00 hex(HMAC(key, plaintext)) "\n"   per live record, by (kind, id)
//	       | "o" 0x00 name 0x00 version 0x00 size 0x00 content type 0x00 hex(HMAC(key, plaintext)) "\n"   per object, by name
//	digest = hex(HMAC-SHA256(key, "domicile/migrate-digest/v1\n" || lines))
//
// Each ciphertext is opened under cell's binding, so a digest is also
// the proof that everything opens there. Both cells compute it from
// what they store; equal digests mean the same records, objects,
// versions and contents. Keyed by the subject's data key, it says
// nothing of the data to anyone without that key, and nothing once the
// key is shredded.
func SubjectDigest(cell string, ref domicile.SubjectRef, gen uint8, keys map[uint8][]byte, records []domicile.StoredRecord, objects []ParcelObject) (string, error) {
	cur, ok := keys[gen]
	if !ok {
		return "", errors.New("no current data key")
	}
	dkey, err := hkdf.Key(sha256.New, cur, nil, "domicile/migrate-digest/v1"+ref.String(), 32)
	if err != nil {
		return "", err
	}
	recs := append([]domicile.StoredRecord(nil), records...)
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].Kind != recs[j].Kind {
			return recs[i].Kind < recs[j].Kind
		}
		return recs[i].ID < recs[j].ID
	})
	objs := append([]ParcelObject(nil), objects...)
	sort.Slice(objs, func(i, j int) bool { return objs[i].Row.Name < objs[j].Row.Name })
	mac := func(b []byte) string {
		m := hmac.New(sha256.New, dkey)
		m.Write(b)
		return hex.EncodeToString(m.Sum(nil))
	}
	var buf bytes.Buffer
	buf.WriteString("domicile/migrate-digest/v1\n")
	for _, r := range recs {
		g, err := envelope.RecordKeyGen(r.Body)
		if err != nil {
			return "", err
		}
		dk, ok := keys[g]
		if !ok {
			return "", fmt.Errorf("record %s/%s: no key of generation %d", r.Kind, r.ID, g)
		}
		pt, err := envelope.OpenRecord(dk, envelope.Binding{Cell: cell, Subject: ref.String(), Kind: r.Kind, ID: r.ID, Version: r.Version}, r.Body)
		if err != nil {
			return "", fmt.Errorf("record %s/%s: %v", r.Kind, r.ID, err)
		}
		fmt.Fprintf(&buf, "r\x00%s\x00%s\x00%d\x00%s\n", r.Kind, r.ID, r.Version, mac(pt))
	}
	for _, o := range objs {
		dk, ok := keys[o.Row.KeyGen]
		if !ok {
			return "", fmt.Errorf("object %s: no key of generation %d", o.Row.Name, o.Row.KeyGen)
		}
		rd, err := envelope.NewReader(bytes.NewReader(o.Sealed), dk, envelope.Binding{Cell: cell, Subject: ref.String(), Kind: objectKind, ID: o.Row.Name, Version: o.Row.Version})
		if err != nil {
			return "", fmt.Errorf("object %s: %v", o.Row.Name, err)
		}
		m := hmac.New(sha256.New, dkey)
		n, err := io.Copy(m, rd)
		if err != nil {
			return "", fmt.Errorf("object %s: %v", o.Row.Name, err)
		}
		if n != o.Row.Size {
			return "", fmt.Errorf("object %s: %d bytes, its row says %d", o.Row.Name, n, o.Row.Size)
		}
		fmt.Fprintf(&buf, "o\x00%s\x00%d\x00%d\x00%s\x00%s\n", o.Row.Name, o.Row.Version, o.Row.Size, o.Row.ContentType, hex.EncodeToString(m.Sum(nil)))
	}
	return mac(buf.Bytes()), nil
}

// ErrStaleCopy is MigrateIn's answer when this cell already holds a copy
// of the subject whose digest differs from the parcel's (the subject
// changed at its source since): Discard it, then bring the parcel in.
var ErrStaleCopy = errors.New("cell: the copy held here differs from the parcel")

// MigrateIn brings a parcel in: it opens each data key with this cell's
// migration key and wraps it under this cell's KEK, opens each record and
// object under the source's binding and seals it again under this cell's
// (same key, fresh salt), computes the subject's digest from what it will
// store, refuses the parcel if it differs from the source's, and commits
// the subject, its records and objects and one migrate-in event (naming
// the plan, the source cell and operator, the digest and note, the notice
// the subject was given) in one batch. It returns the digest and the
// event's log index. A parcel already brought in (equal digest) is not
// brought in twice.
func (c *Cell) MigrateIn(ctx context.Context, p *Parcel, note string) (digest string, index int64, err error) {
	if p.To != c.id {
		return "", 0, fmt.Errorf("cell %s: parcel for cell %s", c.id, p.To)
	}
	if _, err := c.deployment().Place(p.Subject.Jurisdiction, c.id); err != nil {
		return "", 0, err
	}
	ref := p.Subject.Ref
	if d, here, err := c.Digest(ctx, p.Plan, ref); err != nil {
		return "", 0, err
	} else if here {
		if d == p.Digest {
			return d, -1, nil
		}
		return "", 0, ErrStaleCopy
	}
	priv, err := c.migrationKey(ctx)
	if err != nil {
		return "", 0, err
	}
	keys := map[uint8][]byte{}
	defer func() {
		for _, k := range keys {
			clear(k)
		}
	}()
	for _, k := range p.Keys {
		dk, err := hpke.Open(priv, hpke.HKDFSHA256(), hpke.AES256GCM(), keyInfo(p.Plan, p.From, c.id, ref, k.Gen), k.Sealed)
		if err != nil {
			return "", 0, fmt.Errorf("cell %s: a data key of the parcel does not open: %v", c.id, err)
		}
		if envelope.Fingerprint(dk) != k.Fingerprint {
			return "", 0, fmt.Errorf("cell %s: a data key of the parcel is not the key it names", c.id)
		}
		keys[k.Gen] = dk
	}
	src := func(kind, id string, v int64) envelope.Binding {
		return envelope.Binding{Cell: p.From, Subject: ref.String(), Kind: kind, ID: id, Version: v}
	}
	var ops []domicile.Op
	ops = append(ops, &domicile.PutSubject{Subject: p.Subject})
	var recs []domicile.StoredRecord
	for _, r := range p.Records {
		g, err := envelope.RecordKeyGen(r.Body)
		if err != nil {
			return "", 0, err
		}
		dk := keys[g]
		if dk == nil {
			return "", 0, fmt.Errorf("cell %s: record sealed under a key the parcel lacks", c.id)
		}
		pt, err := envelope.OpenRecord(dk, src(r.Kind, r.ID, r.Version), r.Body)
		if err != nil {
			return "", 0, fmt.Errorf("cell %s: a record of the parcel does not open: %v", c.id, err)
		}
		sealed, err := envelope.SealRecord(c.cfg.Rand, dk, g, c.binding(SubjectKey{Ref: ref}, r.Kind, r.ID, r.Version), pt)
		clear(pt)
		if err != nil {
			return "", 0, err
		}
		nr := r
		nr.Body = sealed
		recs = append(recs, nr)
		ops = append(ops, &domicile.ImportRecord{Record: nr})
	}
	var objs []ParcelObject
	var blobs []string
	abort := func() {
		for _, b := range blobs {
			c.store.Blobs().Remove(context.WithoutCancel(ctx), b)
		}
	}
	for _, o := range p.Objects {
		dk := keys[o.Row.KeyGen]
		if dk == nil {
			abort()
			return "", 0, fmt.Errorf("cell %s: object sealed under a key the parcel lacks", c.id)
		}
		rd, err := envelope.NewReader(bytes.NewReader(o.Sealed), dk, src(objectKind, o.Row.Name, o.Row.Version))
		if err != nil {
			abort()
			return "", 0, fmt.Errorf("cell %s: an object of the parcel does not open: %v", c.id, err)
		}
		var sealed bytes.Buffer
		sw, err := envelope.NewWriter(c.cfg.Rand, &sealed, dk, o.Row.KeyGen, c.binding(SubjectKey{Ref: ref}, objectKind, o.Row.Name, o.Row.Version))
		if err != nil {
			abort()
			return "", 0, err
		}
		if _, err := io.Copy(sw, rd); err != nil {
			abort()
			return "", 0, fmt.Errorf("cell %s: an object of the parcel does not open: %v", c.id, err)
		}
		if err := sw.Close(); err != nil {
			abort()
			return "", 0, err
		}
		bw, err := c.store.Blobs().Create(ctx)
		if err != nil {
			abort()
			return "", 0, err
		}
		if _, err := bw.Write(sealed.Bytes()); err != nil {
			bw.Abort()
			abort()
			return "", 0, err
		}
		key, err := bw.Commit()
		if err != nil {
			abort()
			return "", 0, err
		}
		blobs = append(blobs, key)
		row := o.Row
		row.Blob = key
		objs = append(objs, ParcelObject{Row: row, Sealed: sealed.Bytes()})
		ops = append(ops, &domicile.ImportObject{Object: row})
	}
	d, err := SubjectDigest(c.id, ref, p.Subject.KeyGen, keys, recs, objs)
	if err != nil {
		abort()
		return "", 0, fmt.Errorf("cell %s: the copy does not open here: %v", c.id, err)
	}
	if d != p.Digest {
		abort()
		return "", 0, fmt.Errorf("cell %s: the copy's digest %s is not the source's %s", c.id, d, p.Digest)
	}
	// Keys last before the batch: a key without rows is harmless (a
	// retry adopts it again), rows without a key would not open.
	for g, dk := range keys {
		if err := c.keys.Adopt(ctx, ref, g, dk); err != nil {
			abort()
			return "", 0, err
		}
	}
	x := &Access{c: c, actor: migrationActor(p.Plan), sub: SubjectKey{Ref: ref}, act: domicile.ActMigrateIn, res: "subject", stored: &p.Subject}
	from := p.From
	if fc := c.deployment().Cell(p.From); fc != nil && fc.Operator != "" {
		from += " (" + fc.Operator + ")"
	}
	detail := fmt.Sprintf("plan=%s from=%s digest=%s records=%d objects=%d", p.Plan, from, d, len(recs), len(objs))
	if note != "" {
		detail += "; " + note
	}
	les, err := x.commit(ctx, ptr(x.event(domicile.ActMigrateIn, "subject", domicile.Allowed, detail)), ops...)
	if errors.Is(err, domicile.ErrVersionMismatch) {
		abort()
		return "", 0, ErrStaleCopy
	}
	if err != nil {
		abort()
		return "", 0, logFailure(c, err)
	}
	return d, les[len(les)-1].Index, nil
}

func ptr[T any](v T) *T { return &v }

// Discard removes a stale copy of subject ref that an earlier attempt of
// plan brought in, keys and all, so the parcel can be brought in again.
// The subject must not be at home here (the caller checks the
// directory). It logs a migrate-in event with detail "discarded".
func (c *Cell) Discard(ctx context.Context, plan string, ref domicile.SubjectRef) error {
	return c.shred(ctx, plan, ref, domicile.ActMigrateIn, "discarded stale copy plan="+plan)
}

// Shred crypto-shreds what stayed of subject ref here after it moved to
// another cell under plan: its data keys in custody first, then its
// records, objects and the salts of its events, with one migrate-out
// event that names no one. Shredding a subject no longer here is not an
// error.
func (c *Cell) Shred(ctx context.Context, plan string, ref domicile.SubjectRef) error {
	return c.shred(ctx, plan, ref, domicile.ActMigrateOut, "shredded plan="+plan)
}

func (c *Cell) shred(ctx context.Context, plan string, ref domicile.SubjectRef, act domicile.Action, detail string) error {
	sub, err := c.store.Subject(ctx, ref)
	gen := uint8(255)
	if err == nil {
		gen = sub.KeyGen
	} else if !errors.Is(err, domicile.ErrNotFound) {
		return err
	}
	var blobs []string
	if err := c.eachObject(ctx, ref, func(o *domicile.StoredObject) error {
		if o.Blob != "" {
			blobs = append(blobs, o.Blob)
		}
		return nil
	}); err != nil {
		return err
	}
	c.forget(ref)
	if _, err := c.keys.Erase(ctx, ref, gen); err != nil {
		return err
	}
	if sub == nil {
		return nil
	}
	x := &Access{c: c, actor: migrationActor(plan), sub: SubjectKey{Ref: ref}, act: act, res: "subject"}
	ev := x.event(act, "subject", domicile.Allowed, detail)
	ev.Subject = "" // names no one: its reference would link the old leaves again
	les, err := c.entries([]domicile.Event{ev}, domicile.SubjectRef{})
	if err != nil {
		return err
	}
	if err := c.store.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: ref}}, Events: les}); err != nil {
		return logFailure(c, err)
	}
	c.forget(ref)
	for _, b := range blobs {
		c.store.Blobs().Remove(ctx, b)
	}
	return nil
}

// HasKeys reports whether this cell's custody holds any data key of ref.
func (c *Cell) HasKeys(ctx context.Context, ref domicile.SubjectRef) (bool, error) {
	return c.keys.Has(ctx, ref, 255)
}

// SubjectRow returns subject ref's row here (ErrNotFound if it is not
// here), for a migration's plan and checks.
func (c *Cell) SubjectRow(ctx context.Context, ref domicile.SubjectRef) (*domicile.StoredSubject, error) {
	return c.store.Subject(ctx, ref)
}

// Sizes returns the number of live records and objects of ref here and
// their sealed bytes, for a plan.
func (c *Cell) Sizes(ctx context.Context, ref domicile.SubjectRef) (records, objects int, bytes int64, err error) {
	err = c.eachRecord(ctx, ref, "", func(r *domicile.StoredRecord) error {
		records++
		bytes += int64(len(r.Body))
		return nil
	})
	if err != nil {
		return
	}
	err = c.eachObject(ctx, ref, func(o *domicile.StoredObject) error {
		if o.Blob != "" {
			objects++
			bytes += envelope.SealedSize(o.Size)
		}
		return nil
	})
	return
}
