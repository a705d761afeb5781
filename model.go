// Package domicile keeps every end user's personal data in the jurisdiction
// where the law says it must live, and proves it.
//
// This root package holds the domain: jurisdictions, cells and the
// residency policy, subjects, record kinds and their data categories,
// actors and their reasons, access events, and the errors users see. It
// imports only the standard library (and internal/jsonscan, a JSON
// scanner written on it); storage, crypto, the log and HTTP live
// in their own packages and meet here through small interfaces.
package domicile

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"

	"domicile/internal/jsonscan"
)

// Category is the data classification of a record field.
type Category string

// Data categories. The sensitive ones are PIPL Art. 28's list.
const (
	Personal         Category = "personal"
	Biometric        Category = "biometric"
	ReligiousBelief  Category = "religious-belief"
	SpecificIdentity Category = "specific-identity"
	MedicalHealth    Category = "medical-health"
	FinancialAccount Category = "financial-account"
	Whereabouts      Category = "whereabouts"
	MinorUnder14     Category = "minor-under-14"
	ImportantData    Category = "important-data"
	NonPersonal      Category = "non-personal"
)

var categories = map[Category]bool{
	Personal: false, Biometric: true, ReligiousBelief: true, SpecificIdentity: true,
	MedicalHealth: true, FinancialAccount: true, Whereabouts: true, MinorUnder14: true,
	ImportantData: false, NonPersonal: false,
}

// ParseCategory returns the category named s.
func ParseCategory(s string) (Category, error) {
	c := Category(s)
	if _, ok := categories[c]; !ok {
		return "", Errorf(EInvalid, "unknown data category %q", truncate(s, 32))
	}
	return c, nil
}

// Sensitive reports whether c is sensitive personal information (PIPL Art. 28).
func (c Category) Sensitive() bool { return categories[c] }

// Kind is a declared record kind and the categories of its fields.
type Kind struct {
	Name   string              `json:"name"`
	Fields map[string]Category `json:"fields"`
}

// Validate checks a JSON record body against the kind: it must be an object
// whose every field the kind declares. The error names the first
// undeclared field in sorted order.
func (k *Kind) Validate(body []byte) error {
	_, err := k.Check(body)
	return err
}

// Check validates body as Validate does and returns the names of the
// fields it holds, sorted.
func (k *Kind) Check(body []byte) ([]string, error) {
	fields, ok := topLevelNames(body)
	if !ok {
		return k.checkDecoded(body)
	}
	for _, f := range fields {
		if _, ok := k.Fields[f]; !ok {
			return nil, &Error{Code: EInvalid, Field: f, Message: fmt.Sprintf("field %q is not declared for kind %q", truncate(f, 64), k.Name)}
		}
	}
	return fields, nil
}

// topLevelNames returns the sorted, distinct names of a valid JSON
// object's members, reading the bytes once (jsonscan) without decoding
// the values. It returns false for anything else (not valid JSON, not an
// object, a name with an escape), which checkDecoded then answers: every
// record write runs this, and decoding into a map was most of its cost.
func topLevelNames(body []byte) ([]string, bool) {
	var s jsonscan.Scanner
	s.Reset(body, 0)
	if s.Next() != jsonscan.ObjectStart {
		return nil, false
	}
	names := []string{}
	for {
		switch s.Next() {
		case jsonscan.Key:
			if s.Depth() != 1 {
				continue
			}
			if s.Escaped() {
				return nil, false
			}
			raw := s.Bytes()
			names = append(names, string(raw[1:len(raw)-1]))
		case jsonscan.End:
			slices.Sort(names)
			return slices.Compact(names), true
		case jsonscan.Invalid:
			return nil, false
		}
	}
}

// checkDecoded is Check by decoding body into a map.
func (k *Kind) checkDecoded(body []byte) ([]string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, Errorf(EInvalid, "record body must be a JSON object")
	}
	fields := make([]string, 0, len(m))
	for f := range m {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	for _, f := range fields {
		if _, ok := k.Fields[f]; !ok {
			return nil, &Error{Code: EInvalid, Field: f, Message: fmt.Sprintf("field %q is not declared for kind %q", truncate(f, 64), k.Name)}
		}
	}
	return fields, nil
}

// Categories returns the categories that the fields present in body fall
// into; body must have passed Validate.
func (k *Kind) Categories(fields []string) []Category {
	seen := map[Category]bool{}
	var out []Category
	for _, f := range fields {
		if c, ok := k.Fields[f]; ok && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// Limits on identifiers and bodies.
const (
	MaxIDBytes         = 256
	MaxObjectNameBytes = 255
	MaxRecordBytes     = 1 << 20
	MaxListLimit       = 1000
	DefaultListLimit   = 100
)

// ValidateID checks an opaque identifier given by the app (a subject or
// record id): 1 to 256 bytes of UTF-8 without control characters, path
// separators, or characters that are invisible or reorder text (bidi
// controls, zero-width characters and every other format character),
// which would let two ids that look the same name different data. The
// HTTP edge and the router also bring ids to Unicode NFC, so that the
// composed and decomposed forms of one name are one id; this package has
// no Unicode tables for that, and checks only what the standard library
// can.
func ValidateID(field, id string) error {
	if id == "" {
		return FieldErrorf(field, "must not be empty")
	}
	if len(id) > MaxIDBytes {
		return FieldErrorf(field, "is %d bytes, over the limit of %d", len(id), MaxIDBytes)
	}
	if err := checkText(field, id); err != nil {
		return err
	}
	for _, r := range id {
		if r == '/' || r == '\\' {
			return FieldErrorf(field, "contains a path separator")
		}
	}
	if id == "." || id == ".." {
		return FieldErrorf(field, "must not be %q", id)
	}
	return nil
}

// ValidateText checks a short free text (a note): at most max bytes of
// UTF-8 without control characters or invisible formatting characters.
func ValidateText(field, s string, max int) error {
	if len(s) > max {
		return FieldErrorf(field, "is %d bytes, over the limit of %d", len(s), max)
	}
	return checkText(field, s)
}

// checkText refuses invalid UTF-8, control characters, and characters
// that are invisible or change how text around them is shown.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return FieldErrorf(field, "is not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return FieldErrorf(field, "contains a control character")
		case unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp):
			// Bidi overrides and isolates (U+202A-U+202E, U+2066-U+2069),
			// marks (U+200E, U+200F, U+061C), zero-width characters
			// (U+200B-U+200D, U+2060, U+FEFF), tag characters...
			return FieldErrorf(field, "contains the invisible formatting character U+%04X (bidi controls and zero-width characters are not allowed)", r)
		case r == utf8.RuneError:
			return FieldErrorf(field, "contains U+FFFD, the replacement character: the text was not valid UTF-8 somewhere on its way")
		}
	}
	return nil
}

// ValidateObjectName checks an object name: 1 to 255 bytes of ASCII
// letters, digits, '.', '_' and '-', not starting with a dot.
func ValidateObjectName(name string) error {
	if name == "" || len(name) > MaxObjectNameBytes {
		return FieldErrorf("name", "must be 1 to %d bytes", MaxObjectNameBytes)
	}
	if name[0] == '.' {
		return FieldErrorf("name", "must not start with a dot")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return FieldErrorf("name", "may hold only letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}

// Subject is an end user whose data domicile keeps.
type Subject struct {
	ID           string       `json:"id"`
	Jurisdiction Jurisdiction `json:"jurisdiction"`
	Cell         string       `json:"cell"`
	Created      time.Time    `json:"created"`
}

// Record is one JSON document of a subject.
type Record struct {
	Subject string          `json:"subject"`
	Kind    string          `json:"kind"`
	ID      string          `json:"id"`
	Version int64           `json:"version"`
	Data    json.RawMessage `json:"data,omitempty"`
	Updated time.Time       `json:"updated"`
	// Withheld names the fields of the stored record that this read did
	// not return: outside the app's purpose, or outside the scope of the
	// mechanism a read from abroad rests on.
	Withheld []string `json:"withheld,omitempty"`
}

// ETag returns the record's entity tag, derived from its version.
func (r *Record) ETag() string { return fmt.Sprintf("\"v%d\"", r.Version) }

// Object is the metadata of a binary file of a subject.
type Object struct {
	Subject     string    `json:"subject"`
	Name        string    `json:"name"`
	Version     int64     `json:"version"`
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	Updated     time.Time `json:"updated"`
}

// ETag returns the object's entity tag: its content hash and version.
func (o *Object) ETag() string { return fmt.Sprintf("\"v%d-%.16s\"", o.Version, o.SHA256) }
