package cell

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
	"strconv"

	"domicile"
	"domicile/envelope"
)

func objectResource(name string) string { return "object/" + name }

// objectKind is the kind objects are bound to in their associated data.
const objectKind = "object"

// PutObject streams an object in, sealing it chunk by chunk into a blob,
// and commits its metadata with the write event. It never holds the object
// in memory. maxBytes bounds its size. A body that ends early (the client
// went away) leaves no blob behind and is logged as a denied write.
func (c *Cell) PutObject(ctx context.Context, a domicile.Actor, s SubjectKey, name, contentType string, body io.Reader, maxBytes, expect int64) (*domicile.Object, error) {
	release, err := c.enterWrite(ctx, s.Ref)
	if err != nil {
		return nil, err
	}
	defer release()
	x, err := c.begin(ctx, a, s, domicile.ActWrite, objectResource(name))
	if err != nil {
		return nil, err
	}
	var cur int64
	var oldBlob string
	if old, err := c.store.Object(ctx, s.Ref, name); err == nil {
		cur, oldBlob = old.Version, old.Blob
	} else if !isNotFound(err) {
		return nil, err
	}
	if !expectationHolds(expect, cur, oldBlob != "") {
		return nil, x.deny(ctx, preconditionFailed(cur, oldBlob != ""))
	}
	dk, err := x.dataKey(ctx, x.stored.KeyGen)
	if err != nil {
		return nil, x.deny(ctx, err)
	}
	bw, err := c.store.Blobs().Create(ctx)
	if err != nil {
		return nil, err
	}
	sw, err := envelope.NewWriter(c.cfg.Rand, bw, dk, x.stored.KeyGen, c.binding(s, objectKind, name, cur+1))
	if err != nil {
		bw.Abort()
		return nil, err
	}
	h := sha256.New()
	in := &bodyReader{r: io.LimitReader(body, maxBytes+1)}
	n, err := io.Copy(io.MultiWriter(sw, h), in)
	if err == nil && n > maxBytes {
		err = &domicile.Error{Code: domicile.ETooLarge, Message: "object is over the limit of " + strconv.FormatInt(maxBytes, 10) + " bytes"}
	}
	if err == nil {
		err = sw.Close()
	}
	if err != nil {
		bw.Abort()
		switch {
		case in.err != nil && errors.Is(in.err, os.ErrDeadlineExceeded):
			// The body did not arrive within the server's deadline.
			err = domicile.Errorf(domicile.ETimeout, "the object's body did not arrive in time")
		case in.err != nil && errors.Is(err, in.err) && domicile.ErrorCode(err) == domicile.EInternal:
			// The body could not be read: the client went away or sent
			// less than it declared. Not a server error.
			err = domicile.Errorf(domicile.EInvalid, "the object's body ended before it was complete")
		}
		return nil, x.deny(context.WithoutCancel(ctx), err)
	}
	key, err := bw.Commit()
	if err != nil {
		return nil, err
	}
	o := domicile.StoredObject{Ref: s.Ref, Name: name, Version: cur + 1, ContentType: contentType, Size: n,
		SHA256: hex.EncodeToString(h.Sum(nil)), Blob: key, KeyGen: x.stored.KeyGen, Updated: c.cfg.Now().UTC()}
	_, err = x.allow(ctx, "", &domicile.PutObject{Object: o, Expect: cur})
	if err != nil {
		c.store.Blobs().Remove(context.WithoutCancel(ctx), key)
		if errors.Is(err, domicile.ErrVersionMismatch) {
			x.done = false
			return nil, x.deny(ctx, domicile.Errorf(domicile.EConflict, "the object changed concurrently; retry"))
		}
		return nil, logFailure(c, err)
	}
	if oldBlob != "" {
		c.store.Blobs().Remove(ctx, oldBlob)
	}
	return publicObject(s.ID, &o), nil
}

// bodyReader remembers the error reading a request body returned, to tell
// a client that went away from a failing disk.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func publicObject(id string, o *domicile.StoredObject) *domicile.Object {
	return &domicile.Object{Subject: id, Name: o.Name, Version: o.Version, ContentType: o.ContentType, Size: o.Size, SHA256: o.SHA256, Updated: o.Updated}
}

// ObjectReader is an opened object (or a range of it) to stream out.
type ObjectReader struct {
	io.Reader
	closer io.Closer
}

// Close releases the blob.
func (o *ObjectReader) Close() error { return o.closer.Close() }

// Range resolves the byte range to read once the object is known (its
// size, and its entity tag for If-Range): it returns the offset and
// length, or an error with code ERange. It is called only after the
// access is authorized, gated and about to be logged, so a refused actor
// learns nothing of the object, not even its size, and an unsatisfiable
// range is itself a logged attempt.
type Range func(o *domicile.Object) (off, n int64, err error)

// objectFields is what a read of an object's content is, to the gate.
var objectFields = map[string][]string{domicile.ObjectKind: {"content"}}

// GetObject opens an object for reading the range rng resolves. It returns
// the metadata, the range (offset and length) and a reader that decrypts
// only the chunks the range needs. The read's event is durable before it
// returns.
func (c *Cell) GetObject(ctx context.Context, a domicile.Actor, s SubjectKey, name string, rng Range) (*domicile.Object, int64, int64, *ObjectReader, error) {
	x, err := c.begin(ctx, a, s, domicile.ActRead, objectResource(name))
	if err != nil {
		return nil, 0, 0, nil, err
	}
	st, err := c.store.Object(ctx, s.Ref, name)
	if isNotFound(err) || (err == nil && st.Blob == "") {
		return nil, 0, 0, nil, x.missing(ctx, domicile.Errorf(domicile.ENotFound, "no object %s", name))
	}
	if err != nil {
		return nil, 0, 0, nil, err
	}
	if _, err := x.purpose(ctx, domicile.ObjectKind); err != nil {
		return nil, 0, 0, nil, x.deny(ctx, err)
	}
	g, err := x.gate(ctx, objectFields)
	if err == nil && g != nil && g.Fields != nil && !slices.Contains(g.Fields[domicile.ObjectKind], "content") {
		err = domicile.Errorf(domicile.EForbidden, "the mechanism a read from %s rests on does not cover the subject's files", a.Jurisdiction)
	}
	if err != nil {
		return nil, 0, 0, nil, x.deny(ctx, err)
	}
	o := publicObject(s.ID, st)
	off, n, err := rng(o)
	if err == nil && (off < 0 || off > st.Size || n < 0 || off+n > st.Size) {
		err = domicile.Errorf(ERange, "range not satisfiable: object is %d bytes", st.Size)
	}
	if err != nil {
		return o, 0, 0, nil, x.deny(ctx, err)
	}
	dk, err := x.dataKey(ctx, st.KeyGen)
	if err != nil {
		return nil, 0, 0, nil, x.deny(ctx, err)
	}
	br, err := c.store.Blobs().Open(ctx, st.Blob)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	rr, err := envelope.NewRangeReader(br, br.Size(), dk, c.binding(s, objectKind, name, st.Version), off, n)
	if err != nil {
		br.Close()
		return nil, 0, 0, nil, x.deny(ctx, domicile.Errorf(domicile.EInternal, "stored object %s does not open: %v", name, err))
	}
	if err := x.allowRead(ctx); err != nil {
		br.Close()
		return nil, 0, 0, nil, err
	}
	return o, off, n, &ObjectReader{Reader: rr, closer: br}, nil
}

// ERange is the error code of an unsatisfiable range (416).
const ERange = "range-not-satisfiable"

// objectListFields is what a listing of objects returns, to the gate.
var objectListFields = map[string][]string{domicile.ObjectKind: {"name", "content_type", "size", "sha256"}}

// ListObjects returns a page of a subject's objects' metadata (names,
// sizes and hashes are personal data too: the listing is purpose-limited
// and gated like a read).
func (c *Cell) ListObjects(ctx context.Context, a domicile.Actor, s SubjectKey, after string, limit int) ([]domicile.Object, error) {
	x, err := c.begin(ctx, a, s, domicile.ActList, "objects")
	if err != nil {
		return nil, err
	}
	if _, err := x.purpose(ctx, domicile.ObjectKind); err != nil {
		return nil, x.deny(ctx, err)
	}
	g, err := x.gate(ctx, objectListFields)
	if err == nil && g != nil && g.Fields != nil && len(g.Fields[domicile.ObjectKind]) < len(objectListFields[domicile.ObjectKind]) {
		err = domicile.Errorf(domicile.EForbidden, "the mechanism a read from %s rests on does not cover the subject's files", a.Jurisdiction)
	}
	if err != nil {
		return nil, x.deny(ctx, err)
	}
	rows, err := c.store.Objects(ctx, s.Ref, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]domicile.Object, 0, len(rows))
	for i := range rows {
		out = append(out, *publicObject(s.ID, &rows[i]))
	}
	if err := x.allowRead(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteObject deletes an object and its blob.
func (c *Cell) DeleteObject(ctx context.Context, a domicile.Actor, s SubjectKey, name string, expect int64) error {
	release, err := c.enterWrite(ctx, s.Ref)
	if err != nil {
		return err
	}
	defer release()
	x, err := c.begin(ctx, a, s, domicile.ActDelete, objectResource(name))
	if err != nil {
		return err
	}
	st, err := c.store.Object(ctx, s.Ref, name)
	if isNotFound(err) || (err == nil && st.Blob == "") {
		return x.missing(ctx, domicile.Errorf(domicile.ENotFound, "no object %s", name))
	}
	if err != nil {
		return err
	}
	_, err = x.allow(ctx, "", &domicile.DeleteObject{Ref: s.Ref, Name: name, Expect: expect})
	switch {
	case err == nil:
		c.store.Blobs().Remove(ctx, st.Blob)
		return nil
	case errors.Is(err, domicile.ErrNotFound):
		x.done = false
		return x.missing(ctx, domicile.Errorf(domicile.ENotFound, "no object %s", name))
	case errors.Is(err, domicile.ErrVersionMismatch):
		x.done = false
		return x.deny(ctx, domicile.Errorf(domicile.EPrecondition, "If-Match does not match the current version"))
	}
	return logFailure(c, err)
}

// EraseSubject crypto-shreds a subject: it destroys the subject's data keys
// in custody, deletes its records and objects, destroys the salts and
// committed text of its log events and clears their reference (so its
// leaves become unlinkable while the tree verifies), and returns a
// receipt. The erase event itself carries no reference.
func (c *Cell) EraseSubject(ctx context.Context, a domicile.Actor, s SubjectKey) (*domicile.ErasureReceipt, error) {
	release, err := c.enterWrite(ctx, s.Ref)
	if err != nil {
		return nil, err
	}
	defer release()
	if a.Role != domicile.RoleApp && a.Role != domicile.RoleSubject {
		x := &Access{c: c, actor: a, sub: s, act: domicile.ActErase, res: "subject"}
		return nil, x.deny(ctx, domicile.Errorf(domicile.EForbidden, "only the app or the subject itself erases a subject"))
	}
	x, err := c.begin(ctx, a, s, domicile.ActErase, "subject")
	if err != nil {
		return nil, err
	}
	var blobs []string
	if err := c.eachObject(ctx, s.Ref, func(o *domicile.StoredObject) error {
		if o.Blob != "" {
			blobs = append(blobs, o.Blob)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	nrec := 0
	if err := c.eachRecord(ctx, s.Ref, "", func(*domicile.StoredRecord) error { nrec++; return nil }); err != nil {
		return nil, err
	}
	// What already left the cell, read from the trail before the erasure
	// destroys it.
	gone, err := c.unreachable(ctx, s.Ref)
	if err != nil {
		return nil, err
	}
	rid, err := newID(c.cfg.Rand, "rcp_", 16)
	if err != nil {
		return nil, err
	}
	// Keys first: once they are gone nothing of the subject opens, even if
	// what follows is interrupted.
	c.forget(s.Ref)
	fps, err := c.keys.Erase(ctx, s.Ref, x.stored.KeyGen)
	if err != nil {
		return nil, err
	}
	now := c.cfg.Now().UTC()
	// The erase event is committed with the erasure and names no one: its
	// subject reference would link the old leaves again.
	erase := x.event(domicile.ActErase, "subject", domicile.Allowed, "")
	erase.Subject = ""
	les, err := c.entries([]domicile.Event{erase}, domicile.SubjectRef{})
	if err != nil {
		return nil, err
	}
	rec := &domicile.ErasureReceipt{ID: rid, Cell: c.id, KeyFingerprints: fps, Time: now,
		Records: nrec, Objects: len(blobs), Unreachable: gone}
	// The kept receipt names no one. Its log index is that of the erase
	// event, known only once committed: the kept copy points to the event
	// by its time and action instead, which the receipt states.
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	op := &domicile.EraseSubject{Ref: s.Ref, Receipt: &domicile.StoredReceipt{ID: rid, Time: now, Body: body}}
	if err := c.store.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{op}, Events: les}); err != nil {
		return nil, logFailure(c, err)
	}
	c.forget(s.Ref)
	for _, b := range blobs {
		c.store.Blobs().Remove(ctx, b)
	}
	rec.Subject, rec.LogIndex = s.Ref.String(), les[0].Index
	return rec, nil
}
