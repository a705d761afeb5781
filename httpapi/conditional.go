package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"strings"

	"domicile"
	"domicile/cell"
)

// Conditional requests and ranges, as RFC 9110 sections 13 and 14 define
// them. Records have entity tags "vN" and objects "vN-H" (N the version,
// H the first 16 hex digits of the content's SHA-256); both are strong.

// entityTag is one entity-tag of an If-Match, If-None-Match or If-Range
// field (RFC 9110 section 8.8.3).
type entityTag struct {
	weak   bool
	opaque string // between the quotes
}

// parseEntityTags parses a field value that is "*" or a list of
// entity-tags. It reports star for "*", and ok false for anything else.
func parseEntityTags(v string) (tags []entityTag, star bool, ok bool) {
	v = strings.TrimSpace(v)
	if v == "*" {
		return nil, true, true
	}
	const maxTags = 64
	for v != "" {
		var t entityTag
		if rest, w := strings.CutPrefix(v, "W/"); w {
			t.weak, v = true, rest
		}
		if len(v) < 2 || v[0] != '"' {
			return nil, false, false
		}
		end := strings.IndexByte(v[1:], '"')
		if end < 0 {
			return nil, false, false
		}
		t.opaque = v[1 : 1+end]
		for i := 0; i < len(t.opaque); i++ {
			// etagc = %x21 / %x23-7E / obs-text
			if c := t.opaque[i]; c < 0x21 || c == 0x22 || c == 0x7f {
				return nil, false, false
			}
		}
		tags = append(tags, t)
		if len(tags) > maxTags {
			return nil, false, false
		}
		v = strings.TrimLeft(v[2+end:], " \t")
		if v == "" {
			break
		}
		if v[0] != ',' {
			return nil, false, false
		}
		// Empty list elements are allowed (RFC 9110 section 5.6.1).
		v = strings.TrimLeft(v, " \t,")
	}
	if len(tags) == 0 {
		return nil, false, false
	}
	return tags, false, true
}

// tagVersion returns the version an opaque tag of this server names: "vN"
// for a record, "vN-" and 16 lower-case hex digits for an object. ok is
// false for a tag this server cannot have given.
func tagVersion(opaque string, object bool) (int64, bool) {
	rest, found := strings.CutPrefix(opaque, "v")
	if !found {
		return 0, false
	}
	num, suffix, dash := strings.Cut(rest, "-")
	if dash != object {
		return 0, false
	}
	if object {
		if len(suffix) != 16 || strings.Trim(suffix, "0123456789abcdef") != "" {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != num {
		return 0, false
	}
	return n, true
}

// writeExpectation returns the version a write's preconditions require
// (the expect argument of the cell's writes). If-Match "*" requires that
// the resource exists; a list of entity tags, that its current tag is one
// of them, compared strongly: weak tags and tags this server cannot have
// given match nothing, so "stale" answers 412 like an outdated "v1".
// If-None-Match "*" requires that it does not exist (a deleted one does
// not). Both at once can never hold.
func writeExpectation(r *http.Request, object bool) (int64, error) {
	im, hasIM := r.Header["If-Match"]
	inm, hasINM := r.Header["If-None-Match"]
	if hasINM {
		if len(inm) != 1 || strings.TrimSpace(inm[0]) != "*" {
			return 0, domicile.FieldErrorf("If-None-Match", "only \"*\" is supported on writes")
		}
		if !hasIM {
			return domicile.NoVersion, nil
		}
	}
	if !hasIM {
		return domicile.AnyVersion, nil
	}
	tags, star, ok := parseEntityTags(strings.Join(im, ","))
	if !ok {
		return 0, domicile.FieldErrorf("If-Match", "must be \"*\" or a list of entity tags such as \"v3\"")
	}
	if hasINM {
		// If-Match requires a current representation, If-None-Match "*"
		// its absence.
		return domicile.UnmatchedVersion, nil
	}
	if star {
		return domicile.ExistingVersion, nil
	}
	want := domicile.UnmatchedVersion
	for _, t := range tags {
		v, ours := tagVersion(t.opaque, object)
		if t.weak || !ours || v == want {
			continue
		}
		if want != domicile.UnmatchedVersion {
			return 0, domicile.FieldErrorf("If-Match", "names more than one version; name the one the write must follow")
		}
		want = v
	}
	return want, nil
}

// deleteExpectation is writeExpectation for a delete: without If-Match it
// deletes whatever version is current, as with If-Match "*";
// If-None-Match makes no sense on a delete.
func deleteExpectation(r *http.Request, object bool) (int64, error) {
	if _, ok := r.Header["If-None-Match"]; ok {
		return 0, domicile.FieldErrorf("If-None-Match", "a delete deletes what exists: name its version with If-Match")
	}
	v, err := writeExpectation(r, object)
	if err != nil {
		return 0, err
	}
	if v == domicile.ExistingVersion {
		// A missing resource answers 404 before any precondition
		// (RFC 9110 section 13.2.1).
		v = domicile.AnyVersion
	}
	return v, nil
}

// readPrecondition evaluates a read's If-Match and If-None-Match against
// the current entity tag etag (RFC 9110 section 13.2.2): it returns 412
// when If-Match fails, 304 when If-None-Match matches, and 0 to answer
// normally. Malformed fields are ignored, as the RFC allows.
func readPrecondition(r *http.Request, etag string) int {
	if v := r.Header.Values("If-Match"); len(v) > 0 {
		tags, star, ok := parseEntityTags(strings.Join(v, ","))
		if ok && !star && !matchTags(tags, etag, true) {
			return http.StatusPreconditionFailed
		}
	}
	if v := r.Header.Values("If-None-Match"); len(v) > 0 {
		tags, star, ok := parseEntityTags(strings.Join(v, ","))
		if ok && (star || matchTags(tags, etag, false)) {
			return http.StatusNotModified
		}
	}
	return 0
}

// matchTags reports whether any of tags matches etag (a quoted strong
// tag), strongly or weakly.
func matchTags(tags []entityTag, etag string, strong bool) bool {
	opaque := strings.Trim(etag, `"`)
	for _, t := range tags {
		if t.opaque == opaque && (!strong || !t.weak) {
			return true
		}
	}
	return false
}

// ifRangeHolds reports whether a Range may be honoured: there is no
// If-Range, or it is the current strong entity tag. A date never holds:
// objects carry no Last-Modified (RFC 9110 section 13.1.5).
func ifRangeHolds(r *http.Request, etag string) bool {
	v := r.Header.Get("If-Range")
	if v == "" {
		return true
	}
	tags, star, ok := parseEntityTags(v)
	return ok && !star && len(tags) == 1 && !tags[0].weak && matchTags(tags, etag, true)
}

// parseRange parses a Range field against a representation of size
// bytes (RFC 9110 section 14.1.2). It returns the one range to send and
// partial true for a 206; partial false (and the whole) when the field is
// absent, names another unit, holds several ranges (served whole, as the
// RFC allows), or when the representation is empty and the range a
// satisfiable suffix (there is no byte to send a part of). A range whose
// numbers overflow is clamped like any other long range. An unsatisfiable
// or malformed range is an ERange error (416).
func parseRange(h string, size int64) (off, n int64, partial bool, err error) {
	if h == "" {
		return 0, size, false, nil
	}
	unit, spec, found := strings.Cut(h, "=")
	if !found || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return 0, size, false, nil
	}
	spec = strings.Trim(spec, " \t")
	if strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	bad := domicile.Errorf(cell.ERange, "range %q not satisfiable: object is %d bytes", truncate(h, 64), size)
	a, b, found := strings.Cut(spec, "-")
	if !found || !digits(b) || !digits(a) || (a == "" && b == "") {
		return 0, 0, false, domicile.Errorf(cell.ERange, "malformed Range %q", truncate(h, 64))
	}
	if a == "" {
		// suffix-range: the last k bytes.
		k := parseClamped(b)
		if k == 0 {
			return 0, 0, false, bad
		}
		if size == 0 {
			return 0, 0, false, nil
		}
		k = min(k, size)
		return size - k, k, true, nil
	}
	start := parseClamped(a)
	if start >= size {
		return 0, 0, false, bad
	}
	end := size - 1
	if b != "" {
		e := parseClamped(b)
		if e < start {
			return 0, 0, false, domicile.Errorf(cell.ERange, "malformed Range %q: the last byte is before the first", truncate(h, 64))
		}
		end = min(e, size-1)
	}
	return start, end - start + 1, true, nil
}

// digits reports whether s is only ASCII digits (or empty).
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseClamped parses a string of digits, saturating at MaxInt64.
func parseClamped(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return math.MaxInt64 // only digits: the error is a range error
	}
	return n
}
