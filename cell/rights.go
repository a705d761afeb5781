package cell

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"time"

	"domicile"
	"domicile/envelope"
)

// Request is an individual's rights request as the cell keeps it: the
// metadata the cell reads (none of it names the subject) and the body,
// which the caller encodes and the cell seals with the subject's key.
type Request struct {
	ID, Kind, State    string
	Received, Deadline time.Time
	Updated            time.Time
	Version            int64
	// Body is the request's plaintext.
	Body []byte
}

// requestBinding is the kind requests are bound to in their associated
// data: a declared record kind is a lower-case word and cannot be it.
const requestBinding = "rights:request"

func requestResource(id string) string { return "request/" + id }

// MaxRequestBytes bounds a request's body.
const MaxRequestBytes = 256 << 10

// authorizeRequest applies the role rules of rights requests: the subject
// itself, or the app on its behalf. Nobody else files or reads them.
func authorizeRequest(a domicile.Actor, s SubjectKey) error {
	switch {
	case a.Role == domicile.RoleApp:
		return nil
	case a.Role == domicile.RoleSubject && a.Subject == s.Ref.String():
		return nil
	case a.Role == domicile.RoleSubject:
		return domicile.Errorf(domicile.EForbidden, "a subject token reaches only its own subject's requests")
	}
	return domicile.Errorf(domicile.EForbidden, "a rights request is filed and read by the subject's own token, or by the app on its behalf")
}

// beginRequest starts an access of the rights-request routes.
func (c *Cell) beginRequest(ctx context.Context, a domicile.Actor, s SubjectKey, act domicile.Action, res string) (*Access, error) {
	x := &Access{c: c, actor: a, sub: s, act: act, res: res}
	if err := authorizeRequest(a, s); err != nil {
		return nil, x.deny(ctx, err)
	}
	sub, err := c.locate(ctx, s)
	if err != nil {
		return nil, err
	}
	x.stored = sub
	return x, nil
}

// FileRequest files a new rights request of subject s: fill builds it
// from the subject's row (whose jurisdiction says which law's deadline
// applies) and says the event's detail. One "request" event in the
// subject's trail, committed with the sealed request.
func (c *Cell) FileRequest(ctx context.Context, a domicile.Actor, s SubjectKey, id string, fill func(sub domicile.StoredSubject) (*Request, string, error)) (*Request, error) {
	x, err := c.beginRequest(ctx, a, s, domicile.ActRequest, requestResource(id))
	if err != nil {
		return nil, err
	}
	r, detail, err := fill(*x.stored)
	if err != nil {
		return nil, x.deny(ctx, err)
	}
	r.ID = id
	if err := x.putRequest(ctx, r, domicile.NoVersion, detail); err != nil {
		return nil, err
	}
	return r, nil
}

// UpdateRequest changes one of subject s's rights requests: fn gets the
// current request, changes it in place and says the event's detail. One
// "request" event, committed with the new version; a refusal by fn (an
// invalid change) is logged as denied. The changed request is returned,
// so from abroad it passes the gate like a read.
func (c *Cell) UpdateRequest(ctx context.Context, a domicile.Actor, s SubjectKey, id string, fn func(r *Request) (string, error)) (*Request, error) {
	x, err := c.beginRequest(ctx, a, s, domicile.ActRequest, requestResource(id))
	if err != nil {
		return nil, err
	}
	// The answer returns the request: from abroad that is a read.
	if _, err := x.gate(ctx, requestFields); err != nil {
		return nil, x.deny(ctx, err)
	}
	r, err := x.loadRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	expect := r.Version
	detail, err := fn(r)
	if err != nil {
		return nil, x.deny(ctx, err)
	}
	r.ID = id
	if err := x.putRequest(ctx, r, expect, detail); err != nil {
		return nil, err
	}
	return r, nil
}

// loadRequest reads and opens request id for access x; a missing one is
// logged as not found.
func (x *Access) loadRequest(ctx context.Context, id string) (*Request, error) {
	st, err := x.c.store.Request(ctx, x.sub.Ref, id)
	if isNotFound(err) {
		return nil, x.missing(ctx, domicile.FieldErrorf("id", "no request %s", quote(id)))
	}
	if err != nil {
		return nil, err
	}
	r, err := x.openRequest(ctx, st)
	if err != nil {
		return nil, x.deny(ctx, err)
	}
	return r, nil
}

// putRequest seals r and commits it as the version after expect, with the
// access's event.
func (x *Access) putRequest(ctx context.Context, r *Request, expect int64, detail string) error {
	c := x.c
	if len(r.Body) > MaxRequestBytes {
		return x.deny(ctx, domicile.Errorf(domicile.ETooLarge, "the request is over the limit of %d bytes", MaxRequestBytes))
	}
	dk, err := x.dataKey(ctx, x.stored.KeyGen)
	if err != nil {
		return x.deny(ctx, err)
	}
	version := expect + 1
	sealed, err := envelope.SealRecord(c.cfg.Rand, dk, x.stored.KeyGen, c.binding(x.sub, requestBinding, r.ID, version), r.Body)
	if err != nil {
		return err
	}
	st := domicile.StoredRequest{Ref: x.sub.Ref, ID: r.ID, Kind: r.Kind, State: r.State, Received: r.Received, Deadline: r.Deadline,
		Version: version, Body: sealed, Updated: r.Updated}
	_, err = x.allow(ctx, detail, &domicile.PutRequest{Request: st, Expect: expect})
	switch {
	case err == nil:
		r.Version = version
		return nil
	case errors.Is(err, domicile.ErrVersionMismatch):
		x.done = false
		if expect == domicile.NoVersion {
			return x.deny(ctx, domicile.Errorf(domicile.EConflict, "request %s exists", r.ID))
		}
		return x.deny(ctx, domicile.Errorf(domicile.EConflict, "request %s changed concurrently; read it again", r.ID))
	}
	return logFailure(c, err)
}

// requestFields is what a read of requests returns, to the gate.
var requestFields = map[string][]string{"requests": {"request"}}

// GetRequest returns one of the subject's rights requests, opened: one
// read event, durable before it returns. From abroad it passes the gate.
func (c *Cell) GetRequest(ctx context.Context, a domicile.Actor, s SubjectKey, id string) (*Request, error) {
	x, err := c.beginRequest(ctx, a, s, domicile.ActRead, requestResource(id))
	if err != nil {
		return nil, err
	}
	if _, err := x.gate(ctx, requestFields); err != nil {
		return nil, x.deny(ctx, err)
	}
	r, err := x.loadRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := x.allowRead(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// ListRequests returns a page of the subject's rights requests (opened),
// by id after the id after: one list event, gated from abroad.
func (c *Cell) ListRequests(ctx context.Context, a domicile.Actor, s SubjectKey, after string, limit int) ([]Request, error) {
	x, err := c.beginRequest(ctx, a, s, domicile.ActList, "requests")
	if err != nil {
		return nil, err
	}
	if _, err := x.gate(ctx, requestFields); err != nil {
		return nil, x.deny(ctx, err)
	}
	rows, err := c.store.Requests(ctx, s.Ref, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Request, 0, len(rows))
	for i := range rows {
		r, err := x.openRequest(ctx, &rows[i])
		if err != nil {
			return nil, x.deny(ctx, err)
		}
		out = append(out, *r)
	}
	if err := x.allowRead(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

func (x *Access) openRequest(ctx context.Context, st *domicile.StoredRequest) (*Request, error) {
	gen, err := envelope.RecordKeyGen(st.Body)
	if err != nil {
		return nil, domicile.Errorf(domicile.EInternal, "stored request %s is corrupt: %v", st.ID, err)
	}
	dk, err := x.dataKey(ctx, gen)
	if err != nil {
		return nil, err
	}
	plain, err := envelope.OpenRecord(dk, x.c.binding(x.sub, requestBinding, st.ID, st.Version), st.Body)
	if err != nil {
		return nil, domicile.Errorf(domicile.EInternal, "stored request %s does not open: %v", st.ID, err)
	}
	return &Request{ID: st.ID, Kind: st.Kind, State: st.State, Received: st.Received, Deadline: st.Deadline,
		Updated: st.Updated, Version: st.Version, Body: plain}, nil
}

// Inventory is what a subject holds in a cell, without any value: the
// kinds of its records with their counts and fields, and its objects'
// count and bytes. An access or explanation request answers from it.
type Inventory struct {
	Subject domicile.StoredSubject
	Kinds   map[string]KindHolding
	Objects int
	Bytes   int64
}

// KindHolding is what a subject holds of one record kind.
type KindHolding struct {
	Records int      `json:"records"`
	Fields  []string `json:"fields"`
}

// Inventory returns what subject s holds here, for answering the rights
// request named by resource: one list event with detail, to the subject
// itself or the app on its behalf. Field names and counts are personal
// data: from abroad it passes the gate.
func (c *Cell) Inventory(ctx context.Context, a domicile.Actor, s SubjectKey, resource, detail string) (*Inventory, error) {
	x, err := c.beginRequest(ctx, a, s, domicile.ActList, resource)
	if err != nil {
		return nil, err
	}
	if _, err := x.gate(ctx, map[string][]string{"statement": {"records", "objects"}}); err != nil {
		return nil, x.deny(ctx, err)
	}
	inv := &Inventory{Subject: *x.stored, Kinds: map[string]KindHolding{}}
	if err := c.eachRecord(ctx, s.Ref, "", func(st *domicile.StoredRecord) error {
		h := inv.Kinds[st.Kind]
		h.Records++
		for _, f := range st.Fields {
			if !containsString(h.Fields, f) {
				h.Fields = append(h.Fields, f)
			}
		}
		inv.Kinds[st.Kind] = h
		return nil
	}); err != nil {
		return nil, err
	}
	if err := c.eachObject(ctx, s.Ref, func(o *domicile.StoredObject) error {
		if o.Blob != "" {
			inv.Objects++
			inv.Bytes += o.Size
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if _, err := x.allow(ctx, detail); err != nil {
		return nil, logFailure(c, err)
	}
	return inv, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CopyOptions says what a subject's copy is for.
type CopyOptions struct {
	// Detail goes into the copy's event (for a portability abroad: the
	// transfer id and mechanism, as an export's detail says them).
	Detail string
	// Export makes the copy an export event (the data leaves for another
	// handler) rather than a read by the subject.
	Export bool
	// Fields, if not nil, keeps only these fields per kind (what the
	// transfer gate let leave); objects are included only if
	// Fields[domicile.ObjectKind] holds "content". Nil keeps everything.
	Fields map[string][]string
	// Sealed says the caller encrypts the copy to a key the subject gave
	// before any byte leaves the process: the app, acting on the
	// subject's behalf, takes only such a copy (it carries the copy, it
	// cannot read it).
	Sealed bool
}

// CopySink receives a subject's copy: every record, then every object's
// content, then the subject's trail (including the copy's own event).
type CopySink struct {
	Record func(*domicile.Record) error
	Object func(*domicile.Object, io.Reader) error
	Events func([]domicile.StoredEvent) error
}

// Copy reads the whole of subject s's data for the copy or portability
// request requestID (PIPL Art. 45, GDPR Arts. 15(3) and 20): prepare
// checks the request and says what the copy is for. One event (read, or
// export with opts.Export) for the subject itself or, for a sealed copy,
// the app on its behalf. Purpose limitation does not narrow it: the
// data goes to the subject, or where the subject asked. From abroad it
// passes the gate, and a copy the gate would narrow is refused whole (the
// subject's copy is complete or not made). The event is durable before
// the first byte reaches sink. Records are held in memory one subject at
// a time; objects stream.
func (c *Cell) Copy(ctx context.Context, a domicile.Actor, s SubjectKey, requestID string, prepare func(r *Request) (*CopyOptions, error), sink CopySink) error {
	x, err := c.beginRequest(ctx, a, s, domicile.ActRead, requestResource(requestID)+"/bundle")
	if err != nil {
		return err
	}
	r, err := x.loadRequest(ctx, requestID)
	if err != nil {
		return err
	}
	opts, err := prepare(r)
	if err != nil {
		return x.deny(ctx, err)
	}
	if opts.Export {
		x.act = domicile.ActExport
	}
	if a.Role == domicile.RoleApp && !opts.Sealed {
		return x.deny(ctx, domicile.FieldErrorf("recipient", "the app takes a subject's copy only encrypted to the subject's age key; give its recipient"))
	}
	var recs []*domicile.Record
	fields := map[string][]string{}
	if err := c.eachRecord(ctx, s.Ref, "", func(st *domicile.StoredRecord) error {
		keep, ok := opts.Fields[st.Kind]
		if opts.Fields != nil && !ok {
			return nil
		}
		rec, err := x.open(ctx, st)
		if err != nil {
			return err
		}
		if opts.Fields != nil {
			if rec.Data, err = minimise(rec.Data, keep); err != nil {
				return err
			}
		}
		for _, f := range st.Fields {
			if (opts.Fields == nil || containsString(keep, f)) && !containsString(fields[st.Kind], f) {
				fields[st.Kind] = append(fields[st.Kind], f)
			}
		}
		recs = append(recs, rec)
		return nil
	}); err != nil {
		return x.deny(ctx, err)
	}
	var objs []domicile.StoredObject
	if opts.Fields == nil || containsString(opts.Fields[domicile.ObjectKind], "content") {
		if err := c.eachObject(ctx, s.Ref, func(o *domicile.StoredObject) error {
			if o.Blob != "" {
				objs = append(objs, *o)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if len(objs) > 0 {
		fields[domicile.ObjectKind] = []string{"content"}
	}
	fields["events"] = []string{"trail"}
	g, err := x.gate(ctx, fields)
	if err == nil && g != nil && g.Fields != nil {
		for kind, fs := range fields {
			for _, f := range fs {
				if !containsString(g.Fields[kind], f) {
					err = domicile.Errorf(domicile.EForbidden, "a copy read from %s would withhold %s.%s; a subject's copy is whole or not made", a.Jurisdiction, kind, f)
				}
			}
		}
	}
	if err != nil {
		return x.deny(ctx, err)
	}
	// Keys for the objects, before the event: an unwrap is itself logged.
	keys := map[uint8][]byte{}
	for _, o := range objs {
		if keys[o.KeyGen] == nil {
			dk, err := x.dataKey(ctx, o.KeyGen)
			if err != nil {
				return x.deny(ctx, err)
			}
			keys[o.KeyGen] = dk
		}
	}
	if _, err := x.allow(ctx, opts.Detail); err != nil {
		return logFailure(c, err)
	}
	for _, r := range recs {
		if err := sink.Record(r); err != nil {
			return err
		}
	}
	for i := range objs {
		o := &objs[i]
		if err := c.copyObject(ctx, s, o, keys[o.KeyGen], sink.Object); err != nil {
			return err
		}
	}
	// The trail is read after the copy's own event is durable, so it
	// includes it.
	var evs []domicile.StoredEvent
	for after := int64(-1); len(evs) < MaxEvents; {
		page, err := c.store.SubjectEvents(ctx, s.Ref, after, 1000)
		if err != nil {
			return err
		}
		for _, e := range page {
			after = e.Index
			evs = append(evs, e)
		}
		if len(page) < 1000 {
			break
		}
	}
	return sink.Events(evs)
}

func (c *Cell) copyObject(ctx context.Context, s SubjectKey, o *domicile.StoredObject, dk []byte, emit func(*domicile.Object, io.Reader) error) error {
	br, err := c.store.Blobs().Open(ctx, o.Blob)
	if err != nil {
		return err
	}
	defer br.Close()
	rr, err := envelope.NewRangeReader(br, br.Size(), dk, c.binding(s, objectKind, o.Name, o.Version), 0, o.Size)
	if err != nil {
		return domicile.Errorf(domicile.EInternal, "stored object %s does not open: %v", o.Name, err)
	}
	return emit(publicObject(s.ID, o), rr)
}

// Receipt returns an erasure receipt this cell keeps, by its id. It needs
// no access of its own: a receipt names no one (its id is the capability
// the person was given).
func (c *Cell) Receipt(ctx context.Context, id string) (*domicile.ErasureReceipt, error) {
	st, err := c.store.Receipt(ctx, id)
	if err != nil {
		return nil, err
	}
	var r domicile.ErasureReceipt
	if err := json.Unmarshal(st.Body, &r); err != nil {
		return nil, domicile.Errorf(domicile.EInternal, "stored receipt %s is corrupt", id)
	}
	r.ID, r.LogIndex = st.ID, st.LogIndex
	return &r, nil
}

// TransferDescriber names where a transfer counted in the ledger went. An
// erasure asks it (through the cell's gate, when the gate is one) to name
// the recipients of the copies it cannot reach.
type TransferDescriber interface {
	DescribeTransfer(ctx context.Context, id string, near time.Time) (recipient string, dest domicile.Jurisdiction, ok bool, err error)
}

var (
	transferRef = regexp.MustCompile(`\btransfer (trf_[0-9a-f]+)(?: to ([A-Z]{2}))?`)
	remoteFrom  = regexp.MustCompile(`^remote read from ([A-Z]{2})`)
	// portabilityTo reads the detail of a portability's export (rights
	// writes it: "portability of request rq_… to NAME in JJ").
	portabilityTo = regexp.MustCompile(`^portability of request \S+ to (.+?) in ([A-Z]{2})(?:;|$)`)
)

// unreachable reads subject ref's trail for the copies of its data that
// left the cell: exports and portability (transfers), reads from abroad,
// authorities' reads, and copy bundles handed out.
func (c *Cell) unreachable(ctx context.Context, ref domicile.SubjectRef) ([]domicile.UnreachableCopy, error) {
	out := []domicile.UnreachableCopy{}
	for after := int64(-1); ; {
		page, err := c.store.SubjectEvents(ctx, ref, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, se := range page {
			after = se.Index
			var e domicile.Event
			if se.Committed == nil || json.Unmarshal(se.Committed, &e) != nil || e.Outcome != domicile.Allowed {
				continue
			}
			u, ok := c.copyOf(ctx, &e)
			if ok {
				out = append(out, u)
			}
		}
		if len(page) < 1000 {
			return out, nil
		}
	}
}

// copyOf says whether event e handed a copy of the subject's data out of
// the cell's reach, and which.
func (c *Cell) copyOf(ctx context.Context, e *domicile.Event) (domicile.UnreachableCopy, bool) {
	u := domicile.UnreachableCopy{Time: e.Time}
	switch {
	case e.Action == domicile.ActExport:
		u.What = "transfer"
		if strings.HasPrefix(e.Resource, "request/") {
			u.What = "portability"
			u.Reference = strings.TrimSuffix(strings.TrimPrefix(e.Resource, "request/"), "/bundle")
			if m := portabilityTo.FindStringSubmatch(e.Detail); m != nil {
				u.Recipient, u.Destination = m[1], domicile.Jurisdiction(m[2])
			}
		}
	case e.IsRemoteRead() && (e.Action == domicile.ActRead || e.Action == domicile.ActList):
		u.What, u.Recipient = "remote-read", "remote:"+string(e.Role)
		if m := remoteFrom.FindStringSubmatch(e.Detail); m != nil {
			u.Destination = domicile.Jurisdiction(m[1])
		}
	case e.Role == domicile.RoleAuthority && e.Action == domicile.ActRead:
		u.What, u.Recipient, u.Reference = "disclosure", "authority", e.Reference
	case e.Action == domicile.ActRead && strings.HasPrefix(e.Resource, "request/") && strings.HasSuffix(e.Resource, "/bundle"):
		u.What, u.Recipient = "copy", string(e.Role)
		u.Reference = strings.TrimSuffix(strings.TrimPrefix(e.Resource, "request/"), "/bundle")
	default:
		return u, false
	}
	if m := transferRef.FindStringSubmatch(e.Detail); m != nil {
		u.Transfer = m[1]
		if m[2] != "" {
			u.Destination = domicile.Jurisdiction(m[2])
		}
		if td, ok := c.cfg.Gate.(TransferDescriber); ok {
			if rcpt, dest, found, err := td.DescribeTransfer(ctx, u.Transfer, e.Time); err == nil && found {
				u.Recipient, u.Destination = rcpt, dest
			}
		}
	}
	return u, true
}

// newID returns prefix followed by n random bytes in hex.
func newID(rnd io.Reader, prefix string, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", err
	}
	return prefix + hex.EncodeToString(b), nil
}

// NewRequestID returns a fresh request id ("rq_" and 16 hex digits).
func (c *Cell) NewRequestID() (string, error) { return newID(c.cfg.Rand, "rq_", 8) }
