package filekms

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseKeyring feeds the keyring file parser arbitrary bytes, seeded
// with a valid keyring: it must never panic, and a keyring it accepts
// must keep its promises (a current, unretired version with a key of the
// right size; versions ascending) and survive the writer's encoding.
func FuzzParseKeyring(f *testing.F) {
	key := strings.Repeat("A", 43) + "="
	f.Add([]byte(`{"format":"` + Format + `","id":"cn-gz1/kek","current":1,"versions":[{"version":1,"created":"2026-01-01T00:00:00Z","key":"` + key + `"}]}`))
	f.Add([]byte(`{"format":"` + Format + `","id":"k","current":2,"versions":[{"version":1,"created":"2026-01-01T00:00:00Z","retired":"2026-02-01T00:00:00Z"},{"version":2,"created":"2026-02-01T00:00:00+08:00","key":"` + key + `"}]}`))
	f.Add([]byte(`{"format":"` + Format + `","id":"k","current":1,"versions":[{"version":1,"created":"2026-01-01T00:00:00Z","key":"` + key + `"}]} {}`))
	f.Add([]byte(`{"format":"` + Format + `","id":"k","current":1,"versions":[],"extra":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseKeyring(b)
		if err != nil {
			return
		}
		current := false
		for i, v := range d.Versions {
			if i > 0 && v.Version <= d.Versions[i-1].Version {
				t.Fatalf("accepted versions out of order: %q", b)
			}
			if v.Version == d.Current && v.Retired == nil && len(v.Key) == keyBytes {
				current = true
			}
		}
		if !current || d.ID == "" || d.Format != Format {
			t.Fatalf("accepted a keyring without a usable current version: %q", b)
		}
		enc, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			t.Fatalf("encode an accepted keyring: %v", err)
		}
		d2, err := parseKeyring(enc)
		if err != nil {
			t.Fatalf("the writer's encoding of an accepted keyring does not parse: %v\n%s", err, enc)
		}
		enc2, _ := json.MarshalIndent(d2, "", "  ")
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("keyring changed in a round trip:\n%s\n%s", enc, enc2)
		}
	})
}
