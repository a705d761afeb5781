package checkpoint

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestOpenQuorum: a checkpoint cosigned by two of three witnesses passes
// a quorum of 1 or 2 and fails a quorum of 3, naming the one missing;
// a cosignature that does not verify counts as missing, and a witness
// whose key was replaced (same name, new key) does not count.
func TestOpenQuorum(t *testing.T) {
	l := newTestLog(t, "log.example/cn-gz1", 1)
	now := time.Unix(1767225600, 0)
	var cs []*Cosigner
	var vs []*CosignatureVerifier
	for i := range 3 {
		c, v := newTestWitness(t, fmt.Sprintf("witness.example/w%d", i), uint64(10+i), now)
		cs, vs = append(cs, c), append(vs, v)
	}
	signed, err := Sign(testCheckpoint, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := Body(signed)
	cosign := func(c *Cosigner) []byte {
		line, err := Cosign(body, c)
		if err != nil {
			t.Fatal(err)
		}
		return line
	}
	two, err := AddCosignatures(signed, cosign(cs[0]), cosign(cs[1]))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n <= 2; n++ {
		s, err := OpenQuorum(two, l.verifier, n, vs...)
		if err != nil {
			t.Fatalf("OpenQuorum(2 of 3 cosigned, want %d) = %v", n, err)
		}
		if len(s.Cosignatures) != 2 || s.Cosignatures[0].Name != vs[0].Name() || s.Cosignatures[1].Name != vs[1].Name() || !s.Cosignatures[0].Time.Equal(now) {
			t.Errorf("OpenQuorum cosignatures = %+v, want w0 and w1 at %v", s.Cosignatures, now)
		}
	}
	_, err = OpenQuorum(two, l.verifier, 3, vs...)
	var qe *QuorumError
	if !errors.As(err, &qe) || qe.Want != 3 || qe.Have != 2 || len(qe.Missing) != 1 || qe.Missing[0].Name != vs[2].Name() || qe.Missing[0].KeyHash != vs[2].KeyHash() || qe.Missing[0].Reason != "no cosignature" || !bytes.Equal(qe.Checkpoint, two) {
		t.Fatalf("OpenQuorum(2 of 3 cosigned, want 3) = %#v, want a *QuorumError naming w2", err)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("%s+%08x: no cosignature", vs[2].Name(), vs[2].KeyHash())) {
		t.Errorf("QuorumError text %q does not name the missing witness", msg)
	}

	// w1's cosignature with one bit flipped: invalid, so missing.
	line1 := cosign(cs[1])
	j := bytes.LastIndexByte(line1, ' ')
	raw, err := base64.StdEncoding.DecodeString(string(line1[j+1 : len(line1)-1]))
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-1] ^= 1
	bad := fmt.Appendf(append([]byte(nil), line1[:j+1]...), "%s\n", base64.StdEncoding.EncodeToString(raw))
	tampered, err := AddCosignatures(signed, cosign(cs[0]), bad)
	if err != nil {
		t.Fatal(err)
	}
	_, err = OpenQuorum(tampered, l.verifier, 2, vs[0], vs[1])
	if !errors.As(err, &qe) || len(qe.Missing) != 1 || qe.Missing[0].Name != vs[1].Name() || qe.Missing[0].Reason != "invalid cosignature" {
		t.Errorf("OpenQuorum(w1's cosignature tampered) = %v, want w1 missing: invalid cosignature", err)
	}

	// w0 replaced its key under the same name: its new cosignature is not
	// the listed key's.
	replaced, _ := newTestWitness(t, vs[0].Name(), 99, now)
	withNew, err := AddCosignatures(signed, cosign(replaced), cosign(cs[1]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenQuorum(withNew, l.verifier, 2, vs[0], vs[1]); !errors.As(err, &qe) || qe.Missing[0].Name != vs[0].Name() || qe.Missing[0].KeyHash != vs[0].KeyHash() {
		t.Errorf("OpenQuorum(w0 with a replaced key) = %v, want w0's listed key missing", err)
	}

	// What is not a quorum question is refused as such.
	if _, err := OpenQuorum(two, l.verifier, 4, vs...); err == nil || errors.As(err, &qe) {
		t.Errorf("OpenQuorum(want 4 of 3) = %v, want a usage error", err)
	}
	if _, err := OpenQuorum(two, l.verifier, 1, vs[0], vs[0]); err == nil {
		t.Error("OpenQuorum(a witness listed twice) = nil error: one witness would count twice")
	}
	other := newTestLog(t, "log.example/cn-gz1", 2)
	if _, err := OpenQuorum(two, other.verifier, 0, vs...); !errors.As(err, new(*SignatureError)) {
		t.Errorf("OpenQuorum(another log key) = %v, want *SignatureError", err)
	}
}

// FuzzOpenQuorum: whatever it accepts is signed by the log and carries at
// least the quorum of valid cosignatures, each by a listed witness.
func FuzzOpenQuorum(f *testing.F) {
	l := newFuzzLog(f)
	signed, err := Sign(testCheckpoint, l.signer)
	if err != nil {
		f.Fatal(err)
	}
	cs, wv := newFuzzWitness(f)
	line, err := Cosign(mustBody(f, signed), cs)
	if err != nil {
		f.Fatal(err)
	}
	cosigned, err := AddCosignatures(signed, line)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cosigned, uint8(1))
	f.Add(signed, uint8(1))
	f.Add(cosigned, uint8(0))
	f.Fuzz(func(t *testing.T, msg []byte, n uint8) {
		want := int(n % 2)
		s, err := OpenQuorum(msg, l.verifier, want, wv)
		if err != nil {
			var se *SignatureError
			var qe *QuorumError
			if !errors.As(err, &se) && !errors.As(err, &qe) {
				t.Fatalf("OpenQuorum error %T %v: want a *SignatureError or *QuorumError", err, err)
			}
			return
		}
		if len(s.Cosignatures) < want || s.Origin != l.verifier.Name() {
			t.Fatalf("OpenQuorum(want %d) accepted %q with %d cosignatures", want, msg, len(s.Cosignatures))
		}
		if len(s.Cosignatures) == 1 {
			if _, err := Open(msg, l.verifier, wv); err != nil {
				t.Fatalf("OpenQuorum counted a cosignature Open refuses: %v", err)
			}
		}
	})
}
