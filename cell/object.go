package cell

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strconv"

	"domicile"
	"domicile/envelope"
)

func objectResource(name string) string { return "object/" + name }

// objectKind is the kind objects are bound to in their associated data.
const objectKind = "object"

// PutObject streams an object in, sealing it chunk by chunk into a blob,
// and commits its metadata with the write event. It never holds the object
// in memory. maxBytes bounds its size.
func (c *Cell) PutObject(ctx context.Context, a domicile.Actor, s SubjectKey, name, contentType string, body io.Reader, maxBytes, expect int64) (*domicile.Object, error) {
	res := objectResource(name)
	r := c.newRequest(a, s)
	if err := Authorize(a, s, domicile.ActWrite); err != nil {
		return nil, c.deny(ctx, r, domicile.ActWrite, res, err)
	}
	sub, err := c.locate(ctx, s)
	if err != nil {
		return nil, err
	}
	var cur int64
	var oldBlob string
	if old, err := c.store.Object(ctx, s.Ref, name); err == nil {
		cur, oldBlob = old.Version, old.Blob
	} else if !errors.Is(err, domicile.ErrNotFound) {
		return nil, err
	}
	if expect != domicile.AnyVersion && expect != cur {
		return nil, c.deny(ctx, r, domicile.ActWrite, res, preconditionFailed(cur))
	}
	dk, err := c.dataKey(ctx, r, sub.KeyGen)
	if err != nil {
		return nil, c.deny(ctx, r, domicile.ActWrite, res, err)
	}
	bw, err := c.store.Blobs().Create(ctx)
	if err != nil {
		return nil, err
	}
	sw, err := envelope.NewWriter(c.cfg.Rand, bw, dk, sub.KeyGen, c.binding(s, objectKind, name, cur+1))
	if err != nil {
		bw.Abort()
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(sw, h), io.LimitReader(body, maxBytes+1))
	if err == nil && n > maxBytes {
		err = &domicile.Error{Code: domicile.ETooLarge, Message: "object is over the limit of " + strconv.FormatInt(maxBytes, 10) + " bytes"}
	}
	if err == nil {
		err = sw.Close()
	}
	if err != nil {
		bw.Abort()
		return nil, err
	}
	key, err := bw.Commit()
	if err != nil {
		return nil, err
	}
	o := domicile.StoredObject{Ref: s.Ref, Name: name, Version: cur + 1, ContentType: contentType, Size: n,
		SHA256: hex.EncodeToString(h.Sum(nil)), Blob: key, KeyGen: sub.KeyGen, Updated: c.cfg.Now().UTC()}
	r.events = append(r.events, c.event(r, domicile.ActWrite, res, domicile.Allowed, ""))
	_, err = c.commit(ctx, r, &domicile.PutObject{Object: o, Expect: cur})
	if err != nil {
		c.store.Blobs().Remove(ctx, key)
		if errors.Is(err, domicile.ErrVersionMismatch) {
			return nil, domicile.Errorf(domicile.EConflict, "the object changed concurrently; retry")
		}
		return nil, logFailure(err)
	}
	if oldBlob != "" {
		c.store.Blobs().Remove(ctx, oldBlob)
	}
	return publicObject(s.ID, &o), nil
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

// Range resolves the byte range to read once the object's size is known:
// it returns the offset and length, or an error with code ERange. It is
// called only after the access is authorized, so a refused actor learns
// nothing of the object, not even its size.
type Range func(size int64) (off, n int64, err error)

// GetObject opens an object for reading the range rng resolves. It returns
// the metadata, the range (offset and length) and a reader that decrypts
// only the chunks the range needs. The read's event is durable before it
// returns.
func (c *Cell) GetObject(ctx context.Context, a domicile.Actor, s SubjectKey, name string, rng Range) (*domicile.Object, int64, int64, *ObjectReader, error) {
	res := objectResource(name)
	r := c.newRequest(a, s)
	if err := Authorize(a, s, domicile.ActRead); err != nil {
		return nil, 0, 0, nil, c.deny(ctx, r, domicile.ActRead, res, err)
	}
	sub, err := c.locate(ctx, s)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	st, err := c.store.Object(ctx, s.Ref, name)
	if errors.Is(err, domicile.ErrNotFound) || (err == nil && st.Blob == "") {
		return nil, 0, 0, nil, domicile.Errorf(domicile.ENotFound, "no object %s", name)
	}
	if err != nil {
		return nil, 0, 0, nil, err
	}
	o := publicObject(s.ID, st)
	off, n, err := rng(st.Size)
	if err != nil {
		return o, 0, 0, nil, err
	}
	if off < 0 || off > st.Size || n < 0 || off+n > st.Size {
		return o, 0, 0, nil, domicile.Errorf(ERange, "range not satisfiable: object is %d bytes", st.Size)
	}
	if err := c.gate(ctx, r, sub, []domicile.Category{domicile.Personal}); err != nil {
		return nil, 0, 0, nil, c.deny(ctx, r, domicile.ActRead, res, err)
	}
	dk, err := c.dataKey(ctx, r, st.KeyGen)
	if err != nil {
		return nil, 0, 0, nil, c.deny(ctx, r, domicile.ActRead, res, err)
	}
	br, err := c.store.Blobs().Open(ctx, st.Blob)
	if err != nil {
		return nil, 0, 0, nil, err
	}
	rr, err := envelope.NewRangeReader(br, br.Size(), dk, c.binding(s, objectKind, name, st.Version), off, n)
	if err != nil {
		br.Close()
		return nil, 0, 0, nil, domicile.Errorf(domicile.EInternal, "stored object %s does not open: %v", name, err)
	}
	r.events = append(r.events, c.event(r, domicile.ActRead, res, domicile.Allowed, ""))
	if _, err := c.commit(ctx, r); err != nil {
		br.Close()
		return nil, 0, 0, nil, logFailure(err)
	}
	return o, off, n, &ObjectReader{Reader: rr, closer: br}, nil
}

// ERange is the error code of an unsatisfiable range (416).
const ERange = "range-not-satisfiable"

// ListObjects returns a page of a subject's objects' metadata.
func (c *Cell) ListObjects(ctx context.Context, a domicile.Actor, s SubjectKey, after string, limit int) ([]domicile.Object, error) {
	r := c.newRequest(a, s)
	if err := Authorize(a, s, domicile.ActList); err != nil {
		return nil, c.deny(ctx, r, domicile.ActList, "objects", err)
	}
	if _, err := c.locate(ctx, s); err != nil {
		return nil, err
	}
	rows, err := c.store.Objects(ctx, s.Ref, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]domicile.Object, 0, len(rows))
	for i := range rows {
		out = append(out, *publicObject(s.ID, &rows[i]))
	}
	r.events = append(r.events, c.event(r, domicile.ActList, "objects", domicile.Allowed, ""))
	if _, err := c.commit(ctx, r); err != nil {
		return nil, logFailure(err)
	}
	return out, nil
}

// DeleteObject deletes an object and its blob.
func (c *Cell) DeleteObject(ctx context.Context, a domicile.Actor, s SubjectKey, name string, expect int64) error {
	res := objectResource(name)
	r := c.newRequest(a, s)
	if err := Authorize(a, s, domicile.ActDelete); err != nil {
		return c.deny(ctx, r, domicile.ActDelete, res, err)
	}
	if _, err := c.locate(ctx, s); err != nil {
		return err
	}
	st, err := c.store.Object(ctx, s.Ref, name)
	if errors.Is(err, domicile.ErrNotFound) || (err == nil && st.Blob == "") {
		return domicile.Errorf(domicile.ENotFound, "no object %s", name)
	}
	if err != nil {
		return err
	}
	r.events = append(r.events, c.event(r, domicile.ActDelete, res, domicile.Allowed, ""))
	_, err = c.commit(ctx, r, &domicile.DeleteObject{Ref: s.Ref, Name: name, Expect: expect})
	switch {
	case errors.Is(err, domicile.ErrNotFound):
		return domicile.Errorf(domicile.ENotFound, "no object %s", name)
	case errors.Is(err, domicile.ErrVersionMismatch):
		return c.deny(ctx, c.newRequest(a, s), domicile.ActDelete, res, domicile.Errorf(domicile.EPrecondition, "If-Match does not match the current version"))
	case err != nil:
		return logFailure(err)
	}
	c.store.Blobs().Remove(ctx, st.Blob)
	return nil
}

// EraseSubject crypto-shreds a subject: it destroys the subject's data keys
// in custody, deletes its records and objects, destroys the salts of its
// log events (so its leaves become unlinkable while the tree verifies), and
// returns a receipt.
func (c *Cell) EraseSubject(ctx context.Context, a domicile.Actor, s SubjectKey) (*domicile.ErasureReceipt, error) {
	r := c.newRequest(a, s)
	if a.Role != domicile.RoleApp && a.Role != domicile.RoleSubject {
		return nil, c.deny(ctx, r, domicile.ActErase, "subject", domicile.Errorf(domicile.EForbidden, "only the app or the subject itself erases a subject"))
	}
	if err := Authorize(a, s, domicile.ActErase); err != nil {
		return nil, c.deny(ctx, r, domicile.ActErase, "subject", err)
	}
	sub, err := c.locate(ctx, s)
	if err != nil {
		return nil, err
	}
	var blobs []string
	after := ""
	for {
		objs, err := c.store.Objects(ctx, s.Ref, after, 1000)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			blobs = append(blobs, o.Blob)
		}
		if len(objs) < 1000 {
			break
		}
		after = objs[len(objs)-1].Name
	}
	nrec := 0
	ak, aid := "", ""
	for {
		recs, err := c.store.Records(ctx, s.Ref, "", ak, aid, 1000)
		if err != nil {
			return nil, err
		}
		nrec += len(recs)
		if len(recs) < 1000 {
			break
		}
		ak, aid = recs[len(recs)-1].Kind, recs[len(recs)-1].ID
	}
	// Keys first: once they are gone nothing of the subject opens, even if
	// what follows is interrupted.
	c.forget(s.Ref)
	fps, err := c.keys.Erase(ctx, s.Ref, sub.KeyGen)
	if err != nil {
		return nil, err
	}
	now := c.cfg.Now().UTC()
	// The erase event itself is committed after the salts are destroyed,
	// and keeps no salt-dependent link beyond its own.
	erase := c.event(r, domicile.ActErase, "subject", domicile.Allowed, "")
	les, err := c.entries([]domicile.Event{erase}, domicile.SubjectRef{})
	if err != nil {
		return nil, err
	}
	if err := c.store.Commit(ctx, &domicile.Batch{Ops: []domicile.Op{&domicile.EraseSubject{Ref: s.Ref}}, Events: les}); err != nil {
		return nil, logFailure(err)
	}
	c.forget(s.Ref)
	for _, b := range blobs {
		c.store.Blobs().Remove(ctx, b)
	}
	return &domicile.ErasureReceipt{Cell: c.id, Subject: s.Ref.String(), KeyFingerprints: fps, Time: now,
		Records: nrec, Objects: len(blobs), LogIndex: les[0].Index}, nil
}
