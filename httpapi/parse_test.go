package httpapi

import (
	"bytes"
	"net/http/httptest"
	"testing"

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
		{"bytes=0-1,5-6", 100, 0, 100, false, false},
		{"items=0-1", 100, 0, 100, false, false},
		{"bytes=100-", 100, 0, 0, false, true},
		{"bytes=5-1", 100, 0, 0, false, true},
		{"bytes=-0", 100, 0, 0, false, true},
		{"bytes=x-", 100, 0, 0, false, true},
		{"bytes=5", 100, 0, 0, false, true},
	}
	for _, tt := range tests {
		off, n, partial, err := parseRange(tt.h, tt.size)
		if (err != nil) != tt.bad {
			t.Errorf("parseRange(%q) error %v, want bad=%v", tt.h, err, tt.bad)
			continue
		}
		if !tt.bad && (off != tt.off || n != tt.n || partial != tt.partial) {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, want %d, %d, %v", tt.h, tt.size, off, n, partial, tt.off, tt.n, tt.partial)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=-5", "bytes=90-", "bytes=1-2,3-4"} {
		f.Add(s, int64(100))
	}
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

func TestParseIfMatch(t *testing.T) {
	tests := []struct {
		match, none string
		want        int64
		bad         bool
	}{
		{"", "", domicile.AnyVersion, false},
		{`"v3"`, "", 3, false},
		{`W/"v3"`, "", 3, false},
		{`"v2-0123456789abcdef"`, "", 2, false},
		{"", "*", domicile.NoVersion, false},
		{`"v0"`, "", 0, true},
		{`"3"`, "", 0, true},
		{`abc`, "", 0, true},
		{"", `"v1"`, 0, true},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("PUT", "/", nil)
		if tt.match != "" {
			r.Header.Set("If-Match", tt.match)
		}
		if tt.none != "" {
			r.Header.Set("If-None-Match", tt.none)
		}
		got, err := parseIfMatch(r)
		if (err != nil) != tt.bad || (!tt.bad && got != tt.want) {
			t.Errorf("parseIfMatch(If-Match %q, If-None-Match %q) = %d, %v", tt.match, tt.none, got, err)
		}
	}
}

func FuzzParseIfMatch(f *testing.F) {
	f.Add(`"v3"`)
	f.Add(`W/"v12-abc"`)
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest("PUT", "/", nil)
		r.Header.Set("If-Match", h)
		v, err := parseIfMatch(r)
		if err == nil && v < 1 {
			t.Fatalf("parseIfMatch(%q) = %d", h, v)
		}
	})
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
