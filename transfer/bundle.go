package transfer

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"filippo.io/age"

	"domicile"
)

// BundleFormat names the export bundle format. A bundle is JSON lines: a
// header line, one line per record, and a manifest line last:
//
//	{"type":"header","format":"domicile-transfer-bundle/1","transfer":"trf_…",…}
//	{"type":"record","subject":"li.wei","kind":"message","id":"m1","version":1,"sha256":"…","data":{…}}
//	{"type":"manifest","subjects":1,"records":1,"sha256":"…",…}
//
// The manifest's sha256 is the SHA-256 of every byte before the manifest
// line; each record's sha256 is that of its data as written. Unless the
// request asked for a plain bundle, the whole stream is age-encrypted to
// the recipient's X25519 key (filippo.io/age).
const BundleFormat = "domicile-transfer-bundle/1"

// BundleHeader is a bundle's first line.
type BundleHeader struct {
	Type        string                 `json:"type"`
	Format      string                 `json:"format"`
	Transfer    string                 `json:"transfer"`
	Created     time.Time              `json:"created"`
	Entity      string                 `json:"entity"`
	Source      domicile.Jurisdiction  `json:"source"`
	Destination domicile.Jurisdiction  `json:"destination"`
	Recipient   string                 `json:"recipient"`
	Purpose     string                 `json:"purpose"`
	Mechanism   string                 `json:"mechanism,omitempty"`
	Kind        domicile.MechanismKind `json:"mechanism_kind,omitempty"`
	Law         string                 `json:"law_mechanism"`
	Fields      map[string][]string    `json:"fields"`
}

// BundleRecord is one record line of a bundle.
type BundleRecord struct {
	Type    string          `json:"type"`
	Subject string          `json:"subject"`
	Kind    string          `json:"kind"`
	ID      string          `json:"id"`
	Version int64           `json:"version"`
	Updated time.Time       `json:"updated"`
	SHA256  string          `json:"sha256"`
	Data    json.RawMessage `json:"data"`
}

// Manifest is a bundle's last line.
type Manifest struct {
	Type      string                 `json:"type"`
	Transfer  string                 `json:"transfer"`
	Mechanism string                 `json:"mechanism,omitempty"`
	Kind      domicile.MechanismKind `json:"mechanism_kind,omitempty"`
	Law       string                 `json:"law_mechanism"`
	Purpose   string                 `json:"purpose"`
	Subjects  int                    `json:"subjects"`
	Records   int                    `json:"records"`
	PerKind   map[string]int         `json:"records_per_kind"`
	SHA256    string                 `json:"sha256"`
}

// bundleWriter writes a bundle line by line, hashing as it goes.
type bundleWriter struct {
	enc    io.WriteCloser // age, or a no-op closer over buf
	buf    *bufio.Writer
	h      hash.Hash
	man    Manifest
	closed bool
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// newBundleWriter starts a bundle on w: age-encrypted to recipientKey, or
// plain if plain is set.
func newBundleWriter(w io.Writer, recipientKey string, plain bool, hdr BundleHeader) (*bundleWriter, error) {
	bw := &bundleWriter{h: sha256.New()}
	bw.buf = bufio.NewWriterSize(w, 64<<10)
	if plain {
		bw.enc = nopCloser{bw.buf}
	} else {
		r, err := age.ParseX25519Recipient(recipientKey)
		if err != nil {
			return nil, domicile.FieldErrorf("recipient_key", "is not an age X25519 public key (age1…)")
		}
		bw.enc, err = age.Encrypt(bw.buf, r)
		if err != nil {
			return nil, fmt.Errorf("transfer: bundle: %v", err)
		}
	}
	hdr.Type, hdr.Format = "header", BundleFormat
	bw.man = Manifest{Type: "manifest", Transfer: hdr.Transfer, Mechanism: hdr.Mechanism, Kind: hdr.Kind, Law: hdr.Law, Purpose: hdr.Purpose, PerKind: map[string]int{}}
	if err := bw.line(hdr, true); err != nil {
		return nil, err
	}
	return bw, nil
}

func (bw *bundleWriter) line(v any, hashed bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if hashed {
		bw.h.Write(b)
	}
	_, err = bw.enc.Write(b)
	return err
}

// record writes one record.
func (bw *bundleWriter) record(subject string, r *domicile.Record) error {
	sum := sha256.Sum256(r.Data)
	bw.man.Records++
	bw.man.PerKind[r.Kind]++
	return bw.line(BundleRecord{Type: "record", Subject: subject, Kind: r.Kind, ID: r.ID, Version: r.Version, Updated: r.Updated,
		SHA256: hex.EncodeToString(sum[:]), Data: r.Data}, true)
}

// finish writes the manifest and flushes.
func (bw *bundleWriter) finish(subjects int) (*Manifest, error) {
	if bw.closed {
		return nil, errors.New("transfer: bundle finished twice")
	}
	bw.closed = true
	bw.man.Subjects = subjects
	bw.man.SHA256 = hex.EncodeToString(bw.h.Sum(nil))
	if err := bw.line(bw.man, false); err != nil {
		return nil, err
	}
	if err := bw.enc.Close(); err != nil {
		return nil, err
	}
	if err := bw.buf.Flush(); err != nil {
		return nil, err
	}
	return &bw.man, nil
}

// VerifyBundle reads a plain (decrypted) bundle and checks its record
// checksums and its manifest. It returns the header, the records and the
// manifest; it is meant for recipients and tests, and holds the records
// in memory.
func VerifyBundle(r io.Reader) (*BundleHeader, []BundleRecord, *Manifest, error) {
	br := bufio.NewReader(r)
	h := sha256.New()
	var hdr *BundleHeader
	var recs []BundleRecord
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF && len(line) == 0 {
			return nil, nil, nil, errors.New("transfer: bundle has no manifest")
		}
		if err != nil && err != io.EOF {
			return nil, nil, nil, err
		}
		var probe struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(line, &probe) != nil {
			return nil, nil, nil, errors.New("transfer: malformed bundle line")
		}
		switch {
		case probe.Type == "header" && hdr == nil:
			hdr = new(BundleHeader)
			if err := json.Unmarshal(line, hdr); err != nil || hdr.Format != BundleFormat {
				return nil, nil, nil, errors.New("transfer: malformed bundle header")
			}
		case probe.Type == "record" && hdr != nil:
			var rec BundleRecord
			if err := json.Unmarshal(line, &rec); err != nil {
				return nil, nil, nil, errors.New("transfer: malformed bundle record")
			}
			sum := sha256.Sum256(rec.Data)
			if hex.EncodeToString(sum[:]) != rec.SHA256 {
				return nil, nil, nil, fmt.Errorf("transfer: record %s/%s of %s fails its checksum", rec.Kind, rec.ID, rec.Subject)
			}
			recs = append(recs, rec)
		case probe.Type == "manifest" && hdr != nil:
			var m Manifest
			if err := json.Unmarshal(line, &m); err != nil {
				return nil, nil, nil, errors.New("transfer: malformed bundle manifest")
			}
			if m.SHA256 != hex.EncodeToString(h.Sum(nil)) || m.Records != len(recs) {
				return nil, nil, nil, errors.New("transfer: bundle does not match its manifest")
			}
			return hdr, recs, &m, nil
		default:
			return nil, nil, nil, errors.New("transfer: bundle lines out of order")
		}
		h.Write(line)
	}
}
