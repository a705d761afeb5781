package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"domicile"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		h            string
		size         int64
		off, n       int64
		partial, bad bool
	}{
		{"", 100, 0, 100, false, false},
		{"bytes=0-9", 100, 0, 10, true, false},
		{"bytes=90-", 100, 90, 10, true, false},
		{"bytes=-5", 100, 95, 5, true, false},
		{"bytes=-500", 100, 0, 100, true, false},
		{"bytes=10-1000", 100, 10, 90, true, false},
		{"Bytes=0-9", 100, 0, 10, true, false},
		{"bytes= 0-9 ", 100, 0, 10, true, false},
		{"bytes=0-1,5-6", 100, 0, 100, false, false},
		{"items=0-1", 100, 0, 100, false, false},
		// Numbers past int64 are clamped like any long range.
		{"bytes=0-99999999999999999999999", 100, 0, 100, true, false},
		{"bytes=-99999999999999999999999", 100, 0, 100, true, false},
		{"bytes=99999999999999999999999-", 100, 0, 0, false, true},
		// An empty representation has no byte to send a part of: a
		// suffix range is satisfiable and served whole (RFC 9110 section
		// 14.1.1), a range from a first byte is not.
		{"bytes=-5", 0, 0, 0, false, false},
		{"bytes=0-", 0, 0, 0, false, true},
		{"bytes=0-0", 0, 0, 0, false, true},
		{"bytes=100-", 100, 0, 0, false, true},
		{"bytes=5-1", 100, 0, 0, false, true},
		{"bytes=-0", 100, 0, 0, false, true},
		{"bytes=-0", 0, 0, 0, false, true},
		{"bytes=x-", 100, 0, 0, false, true},
		{"bytes=+1-2", 100, 0, 0, false, true},
		{"bytes=5", 100, 0, 0, false, true},
		{"bytes=-", 100, 0, 0, false, true},
	}
	for _, tt := range tests {
		off, n, partial, err := parseRange(tt.h, tt.size)
		if (err != nil) != tt.bad {
			t.Errorf("parseRange(%q, %d) error %v, want bad=%v", tt.h, tt.size, err, tt.bad)
			continue
		}
		if !tt.bad && (off != tt.off || n != tt.n || partial != tt.partial) {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, want %d, %d, %v", tt.h, tt.size, off, n, partial, tt.off, tt.n, tt.partial)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=90-", "bytes=1-2,3-4", "bytes=0-99999999999999999999"} {
		f.Add(s, int64(100))
	}
	f.Add("bytes=-5", int64(0))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		off, n, partial, err := parseRange(h, size)
		if err != nil || !partial {
			return
		}
		if off < 0 || n <= 0 || off+n > size {
			t.Fatalf("parseRange(%q, %d) = [%d, +%d) outside the object", h, size, off, n)
		}
	})
}

func TestWriteExpectation(t *testing.T) {
	tests := []struct {
		match, none string
		object      bool
		want        int64
		bad         bool
	}{
		{"", "", false, domicile.AnyVersion, false},
		{`"v3"`, "", false, 3, false},
		{` "v3" `, "", false, 3, false},
		{`"v2-0123456789abcdef"`, "", true, 2, false},
		{"", "*", false, domicile.NoVersion, false},
		{"*", "", false, domicile.ExistingVersion, false},
		// Entity tags this server cannot have given, weak tags (If-Match
		// compares strongly) and the other resource's form match nothing:
		// 412, not 400.
		{`"stale"`, "", false, domicile.UnmatchedVersion, false},
		{`W/"v3"`, "", false, domicile.UnmatchedVersion, false},
		{`"v0"`, "", false, domicile.UnmatchedVersion, false},
		{`"v03"`, "", false, domicile.UnmatchedVersion, false},
		{`"3"`, "", false, domicile.UnmatchedVersion, false},
		{`"v2-0123456789abcdef"`, "", false, domicile.UnmatchedVersion, false},
		{`"v2"`, "", true, domicile.UnmatchedVersion, false},
		{`"v2-0123"`, "", true, domicile.UnmatchedVersion, false},
		{`"v99999999999999999999"`, "", false, domicile.UnmatchedVersion, false},
		// A list: the one tag of ours counts.
		{`"stale", "v4"`, "", false, 4, false},
		{`"v4", W/"v4", "v4"`, "", false, 4, false},
		{`"v4",, "x"`, "", false, 4, false},
		{`"v4", "v5"`, "", false, 0, true},
		{`"v4"`, "*", false, domicile.UnmatchedVersion, false},
		{`abc`, "", false, 0, true},
		{`"v1`, "", false, 0, true},
		{`"v1" "v2"`, "", false, 0, true},
		{`"a b"`, "", false, 0, true},
		{"", `"v1"`, false, 0, true},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("PUT", "/", nil)
		if tt.match != "" {
			r.Header.Set("If-Match", tt.match)
		}
		if tt.none != "" {
			r.Header.Set("If-None-Match", tt.none)
		}
		got, err := writeExpectation(r, tt.object)
		if (err != nil) != tt.bad || (!tt.bad && got != tt.want) {
			t.Errorf("writeExpectation(If-Match %q, If-None-Match %q, object %v) = %d, %v; want %d, bad %v", tt.match, tt.none, tt.object, got, err, tt.want, tt.bad)
		}
		if err != nil && err.(*domicile.Error).Field == "" {
			t.Errorf("writeExpectation(If-Match %q): %v names no field", tt.match, err)
		}
	}
}

func FuzzWriteExpectation(f *testing.F) {
	f.Add(`"v3"`)
	f.Add(`W/"v12-abc"`)
	f.Add(`"stale", "v4"`)
	f.Fuzz(func(t *testing.T, h string) {
		for _, object := range []bool{false, true} {
			r := httptest.NewRequest("PUT", "/", nil)
			r.Header.Set("If-Match", h)
			v, err := writeExpectation(r, object)
			if err == nil && v < 1 && v != domicile.ExistingVersion && v != domicile.UnmatchedVersion {
				t.Fatalf("writeExpectation(%q) = %d", h, v)
			}
		}
	})
}

func TestReadPrecondition(t *testing.T) {
	tests := []struct {
		match, none string
		want        int
	}{
		{"", "", 0},
		{`"v3"`, "", 0},
		{`"v2", "v3"`, "", 0},
		{"*", "", 0},
		{`"v2"`, "", 412},
		{`W/"v3"`, "", 412},
		{"", `"v3"`, 304},
		{"", `W/"v3"`, 304},
		{"", "*", 304},
		{"", `"v2"`, 0},
		{"", `garbage`, 0},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.match != "" {
			r.Header.Set("If-Match", tt.match)
		}
		if tt.none != "" {
			r.Header.Set("If-None-Match", tt.none)
		}
		if got := readPrecondition(r, `"v3"`); got != tt.want {
			t.Errorf("readPrecondition(If-Match %q, If-None-Match %q) = %d, want %d", tt.match, tt.none, got, tt.want)
		}
	}
	for h, want := range map[string]bool{"": true, `"v3"`: true, `W/"v3"`: false, `"v2"`: false, "Tue, 01 Mar 2026 10:00:00 GMT": false} {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("If-Range", h)
		}
		if got := ifRangeHolds(r, `"v3"`); got != want {
			t.Errorf("ifRangeHolds(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestCheckJSON(t *testing.T) {
	tests := []struct {
		body, field string
	}{
		{`{"id":"a","jurisdiction":"CN"}`, ""},
		{`{"a":{"b":1},"b":{"b":2}}`, ""},
		{`[{"a":1},{"a":2}]`, ""},
		{`{"id":"a","id":"b"}`, "id"},
		{`{"p":{"name":"x","name":"y"}}`, "p.name"},
		{`{"items":[{"k":1},{"k":1,"k":2}]}`, "items[1].k"},
		{"{\"id\":\"a\xffb\"}", "id"},
		{"{\"p\":{\"n\":[\"ok\",\"\xc3\"]}}", "p.n[1]"},
		{"{\"k\xff\":1}", "k?"},
		{`{"id":"\u00e9"}`, ""},
		{`{"a":[1,2,{"b":[3,{"c":true}]}],"d":null}`, ""},
	}
	for _, tt := range tests {
		err := checkJSON([]byte(tt.body))
		var field string
		if err != nil {
			field = err.(*domicile.Error).Field
			if field == "" {
				field = "(none)"
			}
		}
		if field != tt.field {
			t.Errorf("checkJSON(%q) = %v, want field %q", tt.body, err, tt.field)
		}
	}
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	if err := checkJSON([]byte(deep)); err == nil {
		t.Errorf("checkJSON of %d nested arrays = nil, want an error", maxJSONDepth+1)
	}
}

func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":[{"b":"\u00ff"}]}`, "{\"a\":\"\xff\"}", `[1,[2,[3]]]`, `{"a":1,"a":2`, `{"a":{"b":1},"b":{"b":2}}`, "{\"k\xff\":1}", `{"\u0061":1,"a":2} x`, strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkJSON(b)
		if err == nil && json.Valid(b) && !utf8.Valid(b) {
			t.Fatalf("checkJSON accepted invalid UTF-8: %q", b)
		}
		valid, clean := cleanJSON(b)
		if valid != json.Valid(b) {
			t.Fatalf("cleanJSON(%q) says valid %v, json.Valid %v", b, valid, !valid)
		}
		// The quick scan vouches only for what the careful walk accepts.
		if clean && !valid {
			t.Fatalf("cleanJSON(%q) vouches for invalid JSON", b)
		}
		if clean {
			if err := walkJSON(b); err != nil {
				t.Fatalf("cleanJSON(%q) = true, but the walk refuses it: %v", b, err)
			}
		}
	})
}

// TestCleanJSON: the quick scan accepts the bodies clients send and
// leaves every case the walk would refuse, and those it cannot judge
// cheaply, to the walk.
func TestCleanJSON(t *testing.T) {
	many := `{`
	for i := range maxQuickKeys + 1 {
		if i > 0 {
			many += ","
		}
		many += strconv.Quote("k"+strconv.Itoa(i)) + ":1"
	}
	many += "}"
	for _, tt := range []struct {
		body  string
		clean bool
	}{
		{`{"id":"a","jurisdiction":"CN"}`, true},
		{`{"a":{"b":1},"b":{"b":2}}`, true},
		{`[{"a":1},{"a":2}]`, true},
		{`{"a":{"x":1},"x":2}`, true},
		{`{"s":"a\"b:c","t":"\\"}`, true},
		{`{"id":"a","id":"b"}`, false},
		{`{"p":{"name":"x","name":"y"}}`, false},
		{`{"a":{"x":1},"a":2}`, false},
		{`{"items":[{"k":1},{"k":1,"k":2}]}`, false},
		{`{"a":1,"\u0061":2}`, false},
		{"{\"id\":\"a\xffb\"}", false},
		{strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth), true},
		{strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1), false},
		{many, false},
		{`{"a":1,"b":2`, false},
		{`{"a":1,"a":2`, false},
		{`{"a":1} x`, false},
		{"{\"a\":\"\xff\"", false},
	} {
		if valid, _ := cleanJSON([]byte(tt.body)); valid != json.Valid([]byte(tt.body)) {
			t.Errorf("cleanJSON(%.60q) says valid %v, json.Valid %v", tt.body, valid, !valid)
		}
		if _, got := cleanJSON([]byte(tt.body)); got != tt.clean {
			t.Errorf("cleanJSON(%.60q) = %v, want %v", tt.body, got, tt.clean)
		}
		if got := checkJSON([]byte(tt.body)) == nil; tt.clean && !got {
			t.Errorf("checkJSON(%.60q) refused a clean body", tt.body)
		}
	}
}

func BenchmarkCheckJSON(b *testing.B) {
	body, _ := json.Marshal(map[string]any{"subject": "alice", "text": strings.Repeat("x", 1000), "folder": "inbox", "nested": map[string]any{"a": 1, "b": []int{1, 2, 3}}})
	for _, c := range []struct {
		name string
		fn   func([]byte) error
	}{{"check", checkJSON}, {"walk", walkJSON}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.fn(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRecordBodyCheck: what a record write checks of its body
// before it locates the subject, for a 1 KiB body shaped as package
// bench's RecordBody(1024) writes them (which this package's tests
// cannot import).
func BenchmarkRecordBodyCheck(b *testing.B) {
	const head, tail = `{"from":"bench","to":"bench","body":"`, `"}`
	body := []byte(head + strings.Repeat("q0-Zx_8AbCdEfGhI", 64)[:1024-len(head)-len(tail)] + tail)
	b.ReportAllocs()
	for b.Loop() {
		if err := checkRecordBody(body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNormalizeID(t *testing.T) {
	for in, want := range map[string]string{"alice": "alice", "jose\u0301": "jos\u00e9", "jos\u00e9": "jos\u00e9", "\u1100\u1161": "\uac00"} {
		if got, err := NormalizeID("id", in); err != nil || got != want {
			t.Errorf("NormalizeID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"a\u202eb", "a\u200bb", "a\xffb", ""} {
		if _, err := NormalizeID("recordID", in); err == nil || err.(*domicile.Error).Field != "recordID" {
			t.Errorf("NormalizeID(%q) = %v, want a problem naming recordID", in, err)
		}
	}
}

// FuzzAddCheckpoint: an accepted add-checkpoint body has a canonical old
// size and 32-byte hashes, and formats back to itself byte for byte.
func FuzzAddCheckpoint(f *testing.F) {
	f.Add([]byte("old 0\n\norigin\n1\nAAAA\n\n— origin sig\n"))
	f.Add([]byte("old 5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\nx"))
	f.Add([]byte("old 5\r\n\nx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		old, proof, signed, err := parseAddCheckpoint(b)
		if err != nil {
			return
		}
		if old < 0 || len(proof) > 128 || len(signed) == 0 {
			t.Fatalf("accepted old %d with %d hashes and %d bytes of checkpoint", old, len(proof), len(signed))
		}
		for _, h := range proof {
			if len(h) != 32 {
				t.Fatalf("hash of %d bytes", len(h))
			}
		}
		if got := formatAddCheckpoint(old, proof, signed); !bytes.Equal(got, b) {
			t.Fatalf("parseAddCheckpoint(%q) formats back as %q", b, got)
		}
	})
}

func TestDeleteExpectation(t *testing.T) {
	tests := []struct {
		match, none string
		want        int64
		bad         bool
	}{
		{"", "", domicile.AnyVersion, false},
		{"*", "", domicile.AnyVersion, false},
		{`"v3"`, "", 3, false},
		{`"stale"`, "", domicile.UnmatchedVersion, false},
		{"", "*", 0, true},
		{`"v3"`, "*", 0, true},
		{"abc", "", 0, true},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("DELETE", "/", nil)
		if tt.match != "" {
			r.Header.Set("If-Match", tt.match)
		}
		if tt.none != "" {
			r.Header.Set("If-None-Match", tt.none)
		}
		got, err := deleteExpectation(r, false)
		if (err != nil) != tt.bad || (!tt.bad && got != tt.want) {
			t.Errorf("deleteExpectation(If-Match %q, If-None-Match %q) = %d, %v; want %d, bad %v", tt.match, tt.none, got, err, tt.want, tt.bad)
		}
	}
}
