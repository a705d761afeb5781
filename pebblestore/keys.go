package pebblestore

import (
	"encoding/binary"
	"errors"
	"time"

	"domicile"
)

// Keys. Every key starts with one byte naming its table:
//
//	S slot                 subject
//	R slot kind id         record (kind and id order-preserving encoded)
//	O slot name            object
//	Q slot id              rights request
//	X slot idx             a subject's event (empty value)
//	N name                 the slot of a subject reference (name: its HMAC)
//	c size                 signed checkpoint
//	e idx                  event (idx big-endian, 8 bytes)
//	m key                  meta
//	p id                   erasure receipt
//	v key                  the store's own settings (layout version, name key)
//
// No key holds a subject reference. A subject's rows are keyed by its
// slot, 16 random bytes drawn when the store first writes something of
// the subject (its PutSubject, as a rule), and the reference finds the slot
// through its name: HMAC-SHA256 of the reference under a key drawn when
// the store was created (v name-key). An erasure deletes the subject's
// rows and its name, so what Pebble may keep of them afterwards (its
// manifest keeps the smallest and largest key of tables it dropped until
// it rolls over) is at most a slot, which nothing stored links to the
// reference any more, and a name, which links no slot and no event.
//
// The subject tables (upper case) and the name table sort below the log's
// events, which every commit writes: a table whose key range holds an
// event has a bound outside those tables, so its two bounds cannot pair a
// name with a slot.
//
// Stores written before slots (layout 1) keyed the same rows by the
// reference in lower-case tables (s ref, r ref kind id, o ref name,
// q ref id, x ref idx); Open moves them (upgradeLayout).
//
// Strings inside keys use an order-preserving encoding: each 0x00 byte is
// written 0x00 0xFF and the string ends with 0x00 0x01, so that byte order
// of the keys is the order of (kind, id) as Go compares strings.
const (
	tName       = 'N'
	tObject     = 'O'
	tRequest    = 'Q'
	tRecord     = 'R'
	tSubject    = 'S'
	tSubjEvent  = 'X'
	tCheckpoint = 'c'
	tEvent      = 'e'
	tMeta       = 'm'
	tReceipt    = 'p'
	tSetting    = 'v'
)

// The tables of layout 1, each keyed by the subject reference.
var legacyTables = []struct{ old, new byte }{
	{'s', tSubject}, {'r', tRecord}, {'o', tObject}, {'q', tRequest}, {'x', tSubjEvent},
}

// slotLen is the length of a slot.
const slotLen = 16

// A slot is the key prefix of one subject's rows: random, and unrelated
// to the subject's reference.
type slot [slotLen]byte

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

func slotKey(t byte, sl slot) []byte {
	b := make([]byte, 0, 1+slotLen+32)
	return append(append(b, t), sl[:]...)
}

func subjectKey(sl slot) []byte { return slotKey(tSubject, sl) }

func recordKey(sl slot, kind, id string) []byte {
	return appendStr(appendStr(slotKey(tRecord, sl), kind), id)
}

func objectKey(sl slot, name string) []byte {
	return appendStr(slotKey(tObject, sl), name)
}

func requestKey(sl slot, id string) []byte {
	return appendStr(slotKey(tRequest, sl), id)
}

func receiptKey(id string) []byte { return appendStr([]byte{tReceipt}, id) }

func eventKey(idx int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{tEvent}, uint64(idx))
}

func subjEventKey(sl slot, idx int64) []byte {
	return binary.BigEndian.AppendUint64(slotKey(tSubjEvent, sl), uint64(idx))
}

func checkpointKey(size int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{tCheckpoint}, uint64(size))
}

func metaKey(k string) []byte { return appendStr([]byte{tMeta}, k) }

func settingKey(k string) []byte { return appendStr([]byte{tSetting}, k) }

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

// A subject value holds the reference (the one place it is stored with
// the subject's rows: an erasure deletes it with them), the jurisdiction,
// the time of registration and the key generation.
func encSubject(s *domicile.StoredSubject) []byte {
	var e enc
	e.bytes(s.Ref[:])
	e.str(string(s.Jurisdiction))
	e.time(s.Created)
	e.int(int64(s.KeyGen))
	return e.b
}

func decSubject(v []byte) (*domicile.StoredSubject, error) {
	d := dec{b: v}
	ref := d.bytes()
	if len(ref) != len(domicile.SubjectRef{}) {
		return nil, errMalformed
	}
	s := &domicile.StoredSubject{Ref: domicile.SubjectRef(ref), Jurisdiction: domicile.Jurisdiction(d.str()), Created: d.time(), KeyGen: uint8(d.int())}
	return s, d.done()
}

// decLegacySubject decodes a subject value of layout 1, which had no
// reference.
func decLegacySubject(ref domicile.SubjectRef, v []byte) (*domicile.StoredSubject, error) {
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
