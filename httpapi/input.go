package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/text/unicode/norm"

	"domicile"
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

// checkJSON refuses what encoding/json would accept silently in a JSON
// document: invalid UTF-8 (which it replaces by U+FFFD), and an object
// that names a key twice (of which it keeps the last); and nesting deeper
// than maxJSONDepth. The problem names the field, as a dotted path
// ("profile.name"; "[3]" for an array element). Other syntax errors are
// left to the decoder.
//
// A body that jsontext finds valid (one value, valid UTF-8, no duplicate
// names: its defaults) and that nests no deeper than allowed is accepted
// in one pass without allocating; only other bodies take the token walk
// of checkJSONWalk, which names the field. The walk through
// encoding/json's Token API was a tenth of a record write's CPU.
func checkJSON(body []byte) error {
	if jsontext.Value(body).IsValid() && jsonDepth(body) <= maxJSONDepth {
		return nil
	}
	return checkJSONWalk(body)
}

// jsonDepth returns the deepest nesting of arrays and objects in a
// syntactically valid JSON document.
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	in := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if in {
			switch c {
			case '\\':
				i++
			case '"':
				in = false
			}
			continue
		}
		switch c {
		case '"':
			in = true
		case '{', '[':
			depth++
			deepest = max(deepest, depth)
		case '}', ']':
			depth--
		}
	}
	return deepest
}

// checkJSONWalk is checkJSON's walk of the document's tokens.
func checkJSONWalk(body []byte) error {
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
