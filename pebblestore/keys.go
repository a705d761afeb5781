package pebblestore

import (
	"encoding/binary"
	"errors"
	"time"

	"domicile"
)

// Keys. Every key starts with one byte naming its table:
//
//	s ref                  subject
//	r ref kind id          record (kind and id order-preserving encoded)
//	o ref name             object
//	q ref id               rights request
//	p id                   erasure receipt
//	e idx                  event (idx big-endian, 8 bytes)
//	x ref idx              a subject's event (empty value)
//	c size                 signed checkpoint
//	m key                  meta
//
// Strings inside keys use an order-preserving encoding: each 0x00 byte is
// written 0x00 0xFF and the string ends with 0x00 0x01, so that byte order
// of the keys is the order of (kind, id) as Go compares strings.
const (
	tSubject    = 's'
	tRecord     = 'r'
	tObject     = 'o'
	tRequest    = 'q'
	tReceipt    = 'p'
	tEvent      = 'e'
	tSubjEvent  = 'x'
	tCheckpoint = 'c'
	tMeta       = 'm'
)

func appendStr(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b = append(b, 0, 0xff)
		} else {
			b = append(b, s[i])
		}
	}
	return append(b, 0, 1)
}

func refKey(t byte, ref domicile.SubjectRef) []byte {
	b := make([]byte, 0, 1+32+32)
	return append(append(b, t), ref[:]...)
}

func subjectKey(ref domicile.SubjectRef) []byte { return refKey(tSubject, ref) }

func recordKey(ref domicile.SubjectRef, kind, id string) []byte {
	return appendStr(appendStr(refKey(tRecord, ref), kind), id)
}

func objectKey(ref domicile.SubjectRef, name string) []byte {
	return appendStr(refKey(tObject, ref), name)
}

func requestKey(ref domicile.SubjectRef, id string) []byte {
	return appendStr(refKey(tRequest, ref), id)
}

func receiptKey(id string) []byte { return appendStr([]byte{tReceipt}, id) }

func eventKey(idx int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{tEvent}, uint64(idx))
}

func subjEventKey(ref domicile.SubjectRef, idx int64) []byte {
	return binary.BigEndian.AppendUint64(refKey(tSubjEvent, ref), uint64(idx))
}

func checkpointKey(size int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{tCheckpoint}, uint64(size))
}

func metaKey(k string) []byte { return appendStr([]byte{tMeta}, k) }

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Values: a sequence of fields, each an unsigned varint or a
// length-prefixed byte string (length+1, 0 for nil, so that nil and empty
// stay apart).

var errMalformed = errors.New("pebblestore: malformed value")

type enc struct{ b []byte }

func (e *enc) int(v int64) { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) time(t time.Time) {
	e.int(t.UnixNano())
}
func (e *enc) bytes(v []byte) {
	if v == nil {
		e.b = binary.AppendUvarint(e.b, 0)
		return
	}
	e.b = binary.AppendUvarint(e.b, uint64(len(v))+1)
	e.b = append(e.b, v...)
}
func (e *enc) str(s string) {
	e.b = binary.AppendUvarint(e.b, uint64(len(s))+1)
	e.b = append(e.b, s...)
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) time() time.Time { return time.Unix(0, d.int()).UTC() }

// bytes returns a copy of the next byte string, nil if it was nil.
func (d *dec) bytes() []byte {
	l, n := binary.Uvarint(d.b)
	if n <= 0 || l > uint64(len(d.b)-n)+1 {
		d.err = errMalformed
		return nil
	}
	d.b = d.b[n:]
	if l == 0 {
		return nil
	}
	v := make([]byte, l-1)
	copy(v, d.b)
	d.b = d.b[l-1:]
	return v
}

func (d *dec) str() string {
	l, n := binary.Uvarint(d.b)
	if n <= 0 || l == 0 || l > uint64(len(d.b)-n)+1 {
		d.err = errMalformed
		return ""
	}
	d.b = d.b[n:]
	s := string(d.b[:l-1])
	d.b = d.b[l-1:]
	return s
}

func (d *dec) done() error {
	if d.err == nil && len(d.b) != 0 {
		return errMalformed
	}
	return d.err
}

func encSubject(s *domicile.StoredSubject) []byte {
	var e enc
	e.str(string(s.Jurisdiction))
	e.time(s.Created)
	e.int(int64(s.KeyGen))
	return e.b
}

func decSubject(ref domicile.SubjectRef, v []byte) (*domicile.StoredSubject, error) {
	d := dec{b: v}
	s := &domicile.StoredSubject{Ref: ref, Jurisdiction: domicile.Jurisdiction(d.str()), Created: d.time(), KeyGen: uint8(d.int())}
	return s, d.done()
}

// A record value holds the version, the sealed body (nil for a
// tombstone), the fields and the time.
func encRecord(r *domicile.StoredRecord) []byte {
	e := enc{b: make([]byte, 0, len(r.Body)+64)}
	e.int(r.Version)
	e.bytes(r.Body)
	e.int(int64(len(r.Fields)))
	for _, f := range r.Fields {
		e.str(f)
	}
	e.time(r.Updated)
	return e.b
}

func decRecord(r *domicile.StoredRecord, v []byte) error {
	d := dec{b: v}
	r.Version = d.int()
	r.Body = d.bytes()
	n := d.int()
	if n < 0 || n > int64(len(v)) {
		return errMalformed
	}
	r.Fields = nil
	for range n {
		r.Fields = append(r.Fields, d.str())
	}
	r.Updated = d.time()
	return d.done()
}

// recordVersion reads only the version of a record value.
func recordVersion(v []byte) (version int64, live bool, err error) {
	d := dec{b: v}
	version = d.int()
	l, n := binary.Uvarint(d.b)
	if d.err != nil || n <= 0 {
		return 0, false, errMalformed
	}
	return version, l != 0, nil
}

func encObject(o *domicile.StoredObject) []byte {
	var e enc
	e.int(o.Version)
	e.str(o.ContentType)
	e.int(o.Size)
	e.str(o.SHA256)
	e.str(o.Blob)
	e.int(int64(o.KeyGen))
	e.time(o.Updated)
	return e.b
}

func decObject(o *domicile.StoredObject, v []byte) error {
	d := dec{b: v}
	o.Version = d.int()
	o.ContentType = d.str()
	o.Size = d.int()
	o.SHA256 = d.str()
	o.Blob = d.str()
	o.KeyGen = uint8(d.int())
	o.Updated = d.time()
	return d.done()
}

func encRequest(r *domicile.StoredRequest) []byte {
	var e enc
	e.str(r.Kind)
	e.str(r.State)
	e.time(r.Received)
	e.time(r.Deadline)
	e.int(r.Version)
	e.bytes(r.Body)
	e.time(r.Updated)
	return e.b
}

func decRequest(r *domicile.StoredRequest, v []byte) error {
	d := dec{b: v}
	r.Kind, r.State = d.str(), d.str()
	r.Received, r.Deadline = d.time(), d.time()
	r.Version = d.int()
	r.Body = d.bytes()
	r.Updated = d.time()
	return d.done()
}

func encReceipt(r *domicile.StoredReceipt) []byte {
	var e enc
	e.time(r.Time)
	e.int(r.LogIndex)
	e.bytes(r.Body)
	return e.b
}

func decReceipt(r *domicile.StoredReceipt, v []byte) error {
	d := dec{b: v}
	r.Time = d.time()
	r.LogIndex = d.int()
	r.Body = d.bytes()
	return d.done()
}

// An event value: the subject's reference (nil for none, and once the
// subject is erased), the time, the leaf, the committed event and its salt.
func encEvent(ref domicile.SubjectRef, t time.Time, leaf, committed, salt []byte) []byte {
	e := enc{b: make([]byte, 0, 48+len(leaf)+len(committed)+len(salt))}
	if ref.IsZero() {
		e.bytes(nil)
	} else {
		e.bytes(ref[:])
	}
	e.time(t)
	e.bytes(leaf)
	e.bytes(committed)
	e.bytes(salt)
	return e.b
}

func decEvent(idx int64, v []byte) (domicile.StoredEvent, error) {
	d := dec{b: v}
	ev := domicile.StoredEvent{Index: idx}
	ref := d.bytes()
	if len(ref) == 32 {
		ev.Ref = domicile.SubjectRef(ref)
	} else if ref != nil {
		return ev, errMalformed
	}
	ev.Time = d.time()
	ev.Leaf = d.bytes()
	ev.Committed = d.bytes()
	ev.Salt = d.bytes()
	return ev, d.done()
}
