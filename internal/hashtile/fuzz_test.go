package hashtile

import (
	"bytes"
	"testing"
)

// FuzzParseSynced: the "synced" record parser never panics, accepts only
// what formatSynced writes (counts in range), and reads back what it
// accepts.
func FuzzParseSynced(f *testing.F) {
	f.Add(formatSynced([MaxLevel + 1]int64{39_062, 152, 0}))
	f.Add([]byte("domicile hash tiles synced v1\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		counts, err := parseSynced(b)
		if err != nil {
			return
		}
		if !bytes.Equal(formatSynced(counts), b) {
			t.Fatalf("accepted %q, which formats back as %q", b, formatSynced(counts))
		}
	})
}
