package checkpoint

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/sumdb/note"

	"domicile/merkle"
)

// specBody is the example checkpoint of C2SP tlog-checkpoint.
const specBody = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"

func TestParseFormat(t *testing.T) {
	h, _ := base64.StdEncoding.DecodeString("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
	tests := []struct {
		name string
		text string
		want Checkpoint
	}{
		{"spec example", specBody, Checkpoint{Origin: "example.com/behind-the-sofa", Size: 20852163, Hash: merkle.Hash(h)}},
		{"empty tree", "log.example/cn-gz1\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n",
			Checkpoint{Origin: "log.example/cn-gz1", Size: 0, Hash: merkle.EmptyRoot()}},
		{"extension lines", "o\n1\n" + base64.StdEncoding.EncodeToString(h) + "\next one\n— ext two\n",
			Checkpoint{Origin: "o", Size: 1, Hash: merkle.Hash(h), Extensions: []string{"ext one", "— ext two"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.text))
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tc.text, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tc.text, diff)
			}
			out, err := Format(got)
			if err != nil || string(out) != tc.text {
				t.Errorf("Format(Parse(%q)) = %q, %v", tc.text, out, err)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	hash := "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
	for name, text := range map[string]string{
		"empty":             "",
		"no trailing nl":    "o\n1\n" + hash,
		"two lines":         "o\n1\n",
		"empty origin":      "\n1\n" + hash + "\n",
		"leading zero":      "o\n01\n" + hash + "\n",
		"plus sign":         "o\n+1\n" + hash + "\n",
		"negative":          "o\n-1\n" + hash + "\n",
		"overflow":          "o\n9223372036854775808\n" + hash + "\n",
		"short hash":        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n",
		"unpadded hash":     "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",
		"url base64":        "o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n",
		"non-canonical b64": "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",
		"empty extension":   "o\n1\n" + hash + "\n\n",
		"crlf":              "o\r\n1\r\n" + hash + "\r\n",
		"control character": "o\x01\n1\n" + hash + "\n",
		"invalid utf-8":     "o\xff\n1\n" + hash + "\n",
		"blank before sigs": "o\n1\n" + hash + "\n\n— o AAAA\n",
		"space in size":     "o\n 1\n" + hash + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			if c, err := Parse([]byte(text)); err == nil {
				t.Errorf("Parse(%q) = %+v, want error", text, c)
			}
		})
	}
	if _, err := Format(Checkpoint{Origin: "o\nx", Size: 1}); err == nil {
		t.Error("Format(origin with newline) = nil error, want error")
	}
	if _, err := Format(Checkpoint{Origin: "o", Size: 1, Extensions: []string{""}}); err == nil {
		t.Error("Format(empty extension) = nil error, want error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(specBody))
	f.Add([]byte("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nx\n"))
	f.Add([]byte("o\n01\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		c, err := Parse(text)
		if err != nil {
			return
		}
		out, err := Format(c)
		if err != nil || !bytes.Equal(out, text) {
			t.Fatalf("Format(Parse(%q)) = %q, %v: Format output different from input", text, out, err)
		}
	})
}

// testRand is a deterministic randomness source for test keys.
func testRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

type testLog struct {
	signer   note.Signer
	verifier note.Verifier
	vkey     string
}

func newTestLog(t *testing.T, origin string, seed uint64) testLog {
	t.Helper()
	skey, vkey, err := GenerateKey(testRand(seed), origin)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(skey, "PRIVATE+KEY+"+origin+"+") || !strings.HasPrefix(vkey, origin+"+") {
		t.Fatalf("GenerateKey keys %q, %q: want PRIVATE+KEY+name+... and name+...", skey[:12], vkey)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testLog{s, v, vkey}
}

func newTestWitness(t *testing.T, name string, seed uint64, now time.Time) (*Cosigner, *CosignatureVerifier) {
	t.Helper()
	skey, vkey, err := GenerateCosignerKey(testRand(seed), name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCosigner(skey, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if c.Verifier() != vkey {
		t.Fatalf("Cosigner.Verifier() = %q, want %q", c.Verifier(), vkey)
	}
	return c, v
}

var testCheckpoint = Checkpoint{Origin: "log.example/cn-gz1", Size: 42, Hash: merkle.LeafHash([]byte("root"))}

func TestSignOpen(t *testing.T) {
	log := newTestLog(t, testCheckpoint.Origin, 1)
	msg, err := Sign(testCheckpoint, log.signer)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(msg, log.verifier)
	if err != nil {
		t.Fatalf("Open() error: %v", err)
	}
	if diff := cmp.Diff(testCheckpoint, s.Checkpoint); diff != "" {
		t.Errorf("Open() checkpoint mismatch (-want +got):\n%s", diff)
	}
	if !bytes.Equal(s.Raw, msg) {
		t.Errorf("Open().Raw = %q, want %q", s.Raw, msg)
	}
	body, err := Body(msg)
	if err != nil || string(body) != s.Note.Text {
		t.Errorf("Body() = %q, %v; want %q", body, err, s.Note.Text)
	}

	other := newTestLog(t, testCheckpoint.Origin, 2)
	otherOrigin := newTestLog(t, "log.example/eu-fra1", 3)
	wrongOriginMsg, err := note.Sign(&note.Note{Text: s.Note.Text}, otherOrigin.signer)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(msg, []byte("\n42\n"), []byte("\n43\n"), 1)
	for name, tc := range map[string]struct {
		msg []byte
		v   note.Verifier
	}{
		"other key same name": {msg, other.verifier},
		"tampered size":       {tampered, log.verifier},
		"origin not key name": {wrongOriginMsg, otherOrigin.verifier},
		"not a note":          {[]byte("hello\n"), log.verifier},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Open(tc.msg, tc.v)
			var se *SignatureError
			if !errors.As(err, &se) {
				t.Fatalf("Open(%s) = %v, want *SignatureError", name, err)
			}
			if !bytes.Equal(se.Checkpoint, tc.msg) {
				t.Errorf("SignatureError.Checkpoint = %q, want the message", se.Checkpoint)
			}
		})
	}
	if _, err := Sign(testCheckpoint, otherOrigin.signer); err == nil {
		t.Error("Sign(signer named for another origin) = nil error, want error")
	}
}

func TestCosignature(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	log := newTestLog(t, testCheckpoint.Origin, 1)
	w1, v1 := newTestWitness(t, "witness.example/eu-fra1", 10, now)
	w2, v2 := newTestWitness(t, "witness.example/us-east1", 11, now.Add(time.Minute))
	msg, err := Sign(testCheckpoint, log.signer)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := Body(msg)
	line1, err := Cosign(body, w1)
	if err != nil {
		t.Fatal(err)
	}
	line2, err := Cosign(body, w2)
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := AddCosignatures(msg, line1, line2)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("message and key ID follow the spec", func(t *testing.T) {
		// Rebuild the signed message and key ID from the spec's text alone.
		name, b64, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(string(line1), "— "), "\n"), " ")
		sig, _ := base64.StdEncoding.DecodeString(b64)
		if name != "witness.example/eu-fra1" || len(sig) != 4+8+64 {
			t.Fatalf("cosignature line %q: want name and 76 signature bytes", line1)
		}
		pub, _ := base64.StdEncoding.DecodeString(strings.SplitN(w1.Verifier(), "+", 3)[2])
		id := sha256.Sum256(append([]byte(name+"\n"), pub...))
		if pub[0] != 0x04 || !bytes.Equal(sig[:4], id[:4]) {
			t.Errorf("key ID %x, want SHA-256(name||\\n||0x04||key)[:4] = %x", sig[:4], id[:4])
		}
		if ts := binary.BigEndian.Uint64(sig[4:12]); ts != uint64(now.Unix()) {
			t.Errorf("timestamp %d, want %d", ts, now.Unix())
		}
		signed := fmt.Sprintf("cosignature/v1\ntime %d\n%s", now.Unix(), body)
		if !ed25519.Verify(ed25519.PublicKey(pub[1:]), []byte(signed), sig[12:]) {
			t.Error("Ed25519 signature does not verify over cosignature/v1 message")
		}
	})

	t.Run("Open with required witnesses", func(t *testing.T) {
		s, err := Open(cosigned, log.verifier, v1, v2)
		if err != nil {
			t.Fatalf("Open() error: %v", err)
		}
		want := []Cosignature{{v1.Name(), v1.KeyHash(), now}, {v2.Name(), v2.KeyHash(), now.Add(time.Minute)}}
		if diff := cmp.Diff(want, s.Cosignatures); diff != "" {
			t.Errorf("Cosignatures mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("cosignatures verify with x/mod note", func(t *testing.T) {
		n, err := note.Open(cosigned, note.VerifierList(v1, v2))
		if err != nil {
			t.Fatalf("note.Open() error: %v", err)
		}
		if len(n.Sigs) != 2 || n.Sigs[0].Name != v1.Name() || n.Sigs[1].Name != v2.Name() {
			t.Errorf("note.Open() Sigs = %+v, want both witnesses", n.Sigs)
		}
		if len(n.UnverifiedSigs) != 1 || n.UnverifiedSigs[0].Name != log.verifier.Name() {
			t.Errorf("note.Open() UnverifiedSigs = %+v, want the log's", n.UnverifiedSigs)
		}
		// And note.Sign produces the same line format.
		again, err := note.Sign(&note.Note{Text: string(body)}, w1)
		if err != nil || !bytes.HasSuffix(again, line1) {
			t.Errorf("note.Sign with Cosigner = %q, %v; want line %q", again, err, line1)
		}
	})

	t.Run("missing witness", func(t *testing.T) {
		_, err := Open(msg, log.verifier, v1)
		var me *MissingCosignatureError
		if !errors.As(err, &me) || me.Name != v1.Name() || !bytes.Equal(me.Checkpoint, msg) {
			t.Errorf("Open(no cosignatures) = %v, want *MissingCosignatureError for %s", err, v1.Name())
		}
	})

	t.Run("forged cosignature", func(t *testing.T) {
		// A cosignature over another checkpoint, pasted onto this one.
		otherBody, _ := Format(Checkpoint{Origin: testCheckpoint.Origin, Size: 41, Hash: testCheckpoint.Hash})
		forged, _ := Cosign(otherBody, w1)
		bad, err := AddCosignatures(msg, forged)
		if err != nil {
			t.Fatal(err)
		}
		var se *SignatureError
		if _, err := Open(bad, log.verifier, v1); !errors.As(err, &se) {
			t.Errorf("Open(forged cosignature) = %v, want *SignatureError", err)
		}
		// Not required: an unknown signature is ignored.
		if _, err := Open(bad, log.verifier); err != nil {
			t.Errorf("Open(forged cosignature, witness not required) = %v, want nil", err)
		}
	})

	t.Run("timestamp is covered", func(t *testing.T) {
		raw, _ := base64.StdEncoding.DecodeString(strings.Fields(string(line1))[2])
		raw[11] ^= 1
		edited := []byte(fmt.Sprintf("— %s %s\n", w1.Name(), base64.StdEncoding.EncodeToString(raw)))
		bad, _ := AddCosignatures(msg, edited)
		if _, err := Open(bad, log.verifier, v1); err == nil {
			t.Error("Open(cosignature with edited timestamp) = nil, want error")
		}
	})

	t.Run("AddCosignatures replaces same key", func(t *testing.T) {
		w1b, _ := newTestWitness(t, "witness.example/eu-fra1", 10, now.Add(time.Hour))
		newer, _ := Cosign(body, w1b)
		out, err := AddCosignatures(cosigned, newer)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out, line1) || !bytes.Contains(out, newer) || !bytes.Contains(out, line2) {
			t.Errorf("AddCosignatures() = %q, want line1 replaced by newer", out)
		}
		s, err := Open(out, log.verifier, v1)
		if err != nil || !s.Cosignatures[0].Time.Equal(now.Add(time.Hour)) {
			t.Errorf("Open(replaced) = %v; want time %v", err, now.Add(time.Hour))
		}
		for _, bad := range [][]byte{[]byte("— x\n"), []byte("- w AAAAAAA=\n"), append(bytes.Clone(line1), line2...)} {
			if _, err := AddCosignatures(msg, bad); err == nil {
				t.Errorf("AddCosignatures(%q) = nil error, want error", bad)
			}
		}
	})

	t.Run("cosigner signs only checkpoints", func(t *testing.T) {
		if _, err := w1.Sign([]byte("please sign me\n")); err == nil {
			t.Error("Cosigner.Sign(non-checkpoint) = nil error, want error")
		}
	})
}

func TestCosignerKeys(t *testing.T) {
	skey, vkey, err := GenerateCosignerKey(testRand(5), "w.example")
	if err != nil {
		t.Fatal(err)
	}
	// Log keys are not cosigner keys and the other way round.
	logS, logV, _ := GenerateKey(testRand(6), "w.example")
	for _, k := range []string{logS, "PRIVATE+KEY+w.example+00000000+BA==", skey[:len(skey)-4] + "AAA=", "", "PRIVATE+KEY+"} {
		if _, err := NewCosigner(k, nil); err == nil {
			t.Errorf("NewCosigner(%.20q...) = nil error, want error", k)
		}
	}
	for _, k := range []string{logV, vkey[:len(vkey)-4] + "AAA=", "w.example+0000000+BA==", ""} {
		if _, err := NewCosignatureVerifier(k); err == nil {
			t.Errorf("NewCosignatureVerifier(%q) = nil error, want error", k)
		}
	}
	if _, err := note.NewVerifier(vkey); err == nil {
		t.Error("note.NewVerifier(cosigner key) = nil error: type 0x04 keys must not pass as log keys")
	}
	if _, _, err := GenerateCosignerKey(testRand(1), "has space"); err == nil {
		t.Error("GenerateCosignerKey(name with space) = nil error, want error")
	}
}

func ExampleOpen() {
	now := func() time.Time { return time.Unix(1767225600, 0) }
	logSigner, logVerifier, _ := GenerateKey(testRand(1), "log.example/cn-gz1")
	witSigner, witVerifier, _ := GenerateCosignerKey(testRand(2), "log.example/eu-fra1")

	s, _ := NewSigner(logSigner)
	signed, _ := Sign(Checkpoint{Origin: "log.example/cn-gz1", Size: 1, Hash: merkle.LeafHash([]byte("x"))}, s)

	w, _ := NewCosigner(witSigner, now)
	body, _ := Body(signed)
	line, _ := Cosign(body, w)
	signed, _ = AddCosignatures(signed, line)

	lv, _ := NewVerifier(logVerifier)
	wv, _ := NewCosignatureVerifier(witVerifier)
	c, err := Open(signed, lv, wv)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Origin, c.Size, c.Cosignatures[0].Name, c.Cosignatures[0].Time.Unix())
	// Output: log.example/cn-gz1 1 log.example/eu-fra1 1767225600
}
