package checkpoint

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzOpen feeds Open arbitrary signed notes, seeded with a signed and a
// cosigned checkpoint: it must never panic, and what it accepts must be
// signed by the log, name the log as origin, keep the message as its
// evidence and carry the witness's cosignature with its time.
func FuzzOpen(f *testing.F) {
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
	f.Add(signed, false)
	f.Add(cosigned, true)
	f.Add(cosigned, false)
	f.Add([]byte("log.example/cn-gz1\n42\nAAAA\n\n— log.example/cn-gz1 AAAAAA==\n"), false)
	f.Fuzz(func(t *testing.T, msg []byte, witness bool) {
		var ws []*CosignatureVerifier
		if witness {
			ws = append(ws, wv)
		}
		s, err := Open(msg, l.verifier, ws...)
		if err != nil {
			var se *SignatureError
			var me *MissingCosignatureError
			if !errors.As(err, &se) && !errors.As(err, &me) {
				t.Fatalf("Open error %T %v: want a *SignatureError or *MissingCosignatureError", err, err)
			}
			return
		}
		if s.Origin != l.verifier.Name() || !bytes.Equal(s.Raw, msg) || len(s.Cosignatures) != len(ws) {
			t.Fatalf("Open accepted %q as %+v", msg, s)
		}
		body, err := Format(s.Checkpoint)
		if err != nil || !bytes.HasPrefix(msg, body) {
			t.Fatalf("Open accepted a note whose body is not the canonical checkpoint %q", body)
		}
	})
}

// FuzzAddCosignatures feeds AddCosignatures arbitrary signed notes and
// lines: it must never panic, and what it returns must keep the note's
// text, end in the lines added, and accept the same lines again without
// change (each key's signature appears once).
func FuzzAddCosignatures(f *testing.F) {
	l := newFuzzLog(f)
	signed, err := Sign(testCheckpoint, l.signer)
	if err != nil {
		f.Fatal(err)
	}
	cs, _ := newFuzzWitness(f)
	line, err := Cosign(mustBody(f, signed), cs)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed, line)
	f.Add(signed, []byte("— witness/eu-fra1 AAAAAAAAAAAA\n"))
	f.Add([]byte("o\n1\nAAAA\n\n"), []byte("— x\n"))
	f.Fuzz(func(t *testing.T, signed, line []byte) {
		out, err := AddCosignatures(signed, line)
		if err != nil {
			return
		}
		i := bytes.LastIndex(signed, []byte("\n\n"))
		if !bytes.HasPrefix(out, signed[:i+2]) || !bytes.HasSuffix(out, line) {
			t.Fatalf("AddCosignatures(%q, %q) = %q: text lost or line missing", signed, line, out)
		}
		again, err := AddCosignatures(out, line)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("adding %q twice = %q, %v; want %q", line, again, err, out)
		}
	})
}

func newFuzzLog(f *testing.F) testLog {
	skey, vkey, err := GenerateKey(testRand(7), "log.example/cn-gz1")
	if err != nil {
		f.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		f.Fatal(err)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		f.Fatal(err)
	}
	return testLog{s, v, vkey}
}

func newFuzzWitness(f *testing.F) (*Cosigner, *CosignatureVerifier) {
	skey, vkey, err := GenerateCosignerKey(testRand(8), "witness/eu-fra1")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c, err := NewCosigner(skey, func() time.Time { return now })
	if err != nil {
		f.Fatal(err)
	}
	v, err := NewCosignatureVerifier(vkey)
	if err != nil {
		f.Fatal(err)
	}
	return c, v
}

func mustBody(f *testing.F, signed []byte) []byte {
	b, err := Body(signed)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
