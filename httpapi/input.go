package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"domicile"
	"domicile/internal/jsonscan"
)

// NormalizeID checks an identifier given by a client (a subject or
// record id) and returns its Unicode NFC form, so that the composed and
// decomposed spellings of one name ("é" as U+00E9, or as "e" and
// U+0301) are one id. Invalid UTF-8, control characters, bidi controls
// and zero-width characters are refused with a problem naming field
// (domicile.ValidateID).
func NormalizeID(field, id string) (string, error) {
	if err := domicile.ValidateID(field, id); err != nil {
		return "", err
	}
	n := norm.NFC.String(id)
	if n == id {
		return id, nil
	}
	// Composition can change the length; check the form kept.
	if err := domicile.ValidateID(field, n); err != nil {
		return "", err
	}
	return n, nil
}

// maxJSONDepth bounds the nesting of a JSON body.
const maxJSONDepth = 64

// checkJSON walks a JSON document and refuses what encoding/json would
// accept silently: invalid UTF-8 (which it replaces by U+FFFD), and an
// object that names a key twice (of which it keeps the last). The
// problem names the field, as a dotted path ("profile.name"; "[3]" for
// an array element). Other syntax errors are left to the decoder.
//
// Almost every body is clean, and walking it token by token costs more
// than the rest of a write's decoding: a scan that neither allocates nor
// decodes (cleanJSON) answers for those, and only a body it cannot vouch
// for is walked to find and name what is wrong.
func checkJSON(body []byte) error {
	if _, clean := cleanJSON(body); clean {
		return nil
	}
	return walkJSON(body)
}

// maxQuickKeys is how many keys of one object cleanJSON compares; an
// object with more is left to walkJSON.
const maxQuickKeys = 32

// cleanJSON reads body once and reports whether it is valid JSON, as
// json.Valid does, and whether it is certainly free of what checkJSON
// refuses: it is valid UTF-8, nested at most maxJSONDepth deep, and no
// object names a key twice. clean may be false for a clean body (a key
// with an escape, an object with many keys, a malformed document); it is
// never true for one checkJSON would refuse.
func cleanJSON(body []byte) (valid, clean bool) {
	// An open object's keys are spans of body, kept in one array shared
	// by the open objects: each open container's keys start at its base.
	var (
		s     jsonscan.Scanner
		bases [maxJSONDepth]int
		keys  [maxQuickKeys * 4][2]int
		nkeys int
	)
	// The scanner refuses invalid UTF-8 in strings (and so, in valid
	// JSON, anywhere); whatever it refuses, or this scan cannot vouch for,
	// is then told valid or not by a plain syntax check.
	s.Reset(body, jsonscan.UTF8)
	for {
		switch s.Next() {
		case jsonscan.ObjectStart, jsonscan.ArrayStart:
			d := s.Depth()
			if d > maxJSONDepth {
				return jsonscan.Valid(body), false
			}
			bases[d-1] = nkeys
		case jsonscan.ObjectEnd, jsonscan.ArrayEnd:
			nkeys = bases[s.Depth()]
		case jsonscan.Key:
			base := bases[s.Depth()-1]
			if s.Escaped() || nkeys-base >= maxQuickKeys || nkeys == len(keys) {
				return jsonscan.Valid(body), false
			}
			start, end := s.Offset()+1, s.Offset()+len(s.Bytes())-1 // within the quotes
			key := body[start:end]
			for _, k := range keys[base:nkeys] {
				if bytes.Equal(body[k[0]:k[1]], key) {
					return jsonscan.Valid(body), false
				}
			}
			keys[nkeys] = [2]int{start, end}
			nkeys++
		case jsonscan.End:
			return true, true
		case jsonscan.Invalid:
			return jsonscan.Valid(body), false
		}
	}
}

// walkJSON is checkJSON's careful walk, which names the field at fault.
func walkJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]bool
		key    string // the current key of an object
		index  int    // the next index of an array
		expect bool   // an object expects a key next
	}
	var stack []*frame
	path := func(last string) string {
		var parts []string
		for _, f := range stack {
			switch {
			case f.object && f.key != "":
				parts = append(parts, f.key)
			case !f.object:
				parts = append(parts, "["+strconv.Itoa(f.index)+"]")
			}
		}
		if last != "" {
			parts = append(parts, last)
		}
		return strings.ReplaceAll(strings.Join(parts, "."), ".[", "[")
	}
	// value is called after each complete value, to move its container on.
	value := func() {
		if n := len(stack); n > 0 {
			if f := stack[n-1]; f.object {
				f.expect = true
			} else {
				f.index++
			}
		}
	}
	var off int64
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return nil // the decoder reports syntax errors with their offset
		}
		raw := body[off:dec.InputOffset()]
		off = dec.InputOffset()
		var top *frame
		if n := len(stack); n > 0 {
			top = stack[n-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return domicile.FieldErrorf(path(""), "is nested more than %d levels deep", maxJSONDepth)
				}
				stack = append(stack, &frame{object: v == '{', keys: map[string]bool{}, expect: v == '{'})
			case '}', ']':
				stack = stack[:len(stack)-1]
				value()
			}
		case string:
			isKey := top != nil && top.object && top.expect
			if isKey {
				top.key = "" // the path to this key is its object's
			}
			if !utf8.Valid(raw) {
				if isKey {
					return domicile.FieldErrorf(path(strings.ReplaceAll(v, "\uFFFD", "?")), "is a key that is not valid UTF-8")
				}
				return domicile.FieldErrorf(path(""), "is not valid UTF-8")
			}
			if isKey {
				if top.keys[v] {
					return domicile.FieldErrorf(path(v), "appears twice in one object")
				}
				top.keys[v] = true
				top.key, top.expect = v, false
				continue
			}
			value()
		default:
			value()
		}
	}
}
