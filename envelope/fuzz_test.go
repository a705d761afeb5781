package envelope

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"testing"
)

// fuzzSeeds returns the encodings from testdata/vectors.json and a few
// damaged variants, as seeds for every fuzzer.
func fuzzSeeds(f *testing.F) (v vectors, seeds [][]byte) {
	f.Helper()
	v = loadVectors(f)
	for _, s := range []string{v.Record, v.Object, v.EmptyObject, v.Wrapped} {
		b := unhex(f, s)
		seeds = append(seeds, b, b[:len(b)/2], append(bytes.Clone(b), 0))
	}
	return v, append(seeds, nil, []byte{1}, []byte{2}, []byte{3})
}

func FuzzParseRecordHeader(f *testing.F) {
	_, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseRecordHeader(b)
		gen, genErr := RecordKeyGen(b)
		if (err == nil) != (genErr == nil) || gen != h.KeyGen {
			t.Fatalf("RecordKeyGen = %d, %v; ParseRecordHeader = %+v, %v", gen, genErr, h, err)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseRecordHeader error %v is not ErrMalformed", err)
			}
			return
		}
		enc, _ := h.MarshalBinary()
		if !bytes.Equal(enc, b[:RecordHeaderSize]) {
			t.Fatalf("MarshalBinary output %x different from input %x", enc, b[:RecordHeaderSize])
		}
	})
}

func FuzzParseStreamHeader(f *testing.F) {
	_, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseStreamHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseStreamHeader error %v is not ErrMalformed", err)
			}
			return
		}
		enc, _ := h.MarshalBinary()
		if !bytes.Equal(enc, b[:StreamHeaderSize]) {
			t.Fatalf("MarshalBinary output %x different from input %x", enc, b[:StreamHeaderSize])
		}
	})
}

func FuzzParseWrapped(f *testing.F) {
	_, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := ParseWrapped(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseWrapped error %v is not ErrMalformed", err)
			}
			return
		}
		enc, err := w.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(ParseWrapped(%x)) = %v", b, err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("MarshalBinary output %x different from input %x", enc, b)
		}
	})
}

// FuzzOpenRecord opens arbitrary input with the vectors' key: it must not
// panic, must return no plaintext with an error, and can only succeed on the
// one record that key sealed.
func FuzzOpenRecord(f *testing.F) {
	v, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	dk, record := unhex(f, v.DataKey), unhex(f, v.Record)
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := OpenRecord(dk, v.Binding, b)
		if err != nil {
			if pt != nil {
				t.Fatalf("OpenRecord returned %d bytes with error %v", len(pt), err)
			}
			if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("OpenRecord error %v is neither ErrAuth nor ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(b, record) || string(pt) != v.Plaintext {
			t.Fatalf("OpenRecord(%x) succeeded on a forgery", b)
		}
	})
}

// FuzzNewReader opens arbitrary input as an object, sequentially and by a
// range: no panic, and success only on the objects the vectors' key sealed.
func FuzzNewReader(f *testing.F) {
	v, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s, int64(0), int64(5))
	}
	dk := unhex(f, v.DataKey)
	valid := map[string]string{v.Object: v.Plaintext, v.EmptyObject: ""}
	f.Fuzz(func(t *testing.T, b []byte, off, n int64) {
		want, isValid := valid[hex.EncodeToString(b)]
		pt, err := openObject(dk, v.Binding, b)
		switch {
		case err != nil && !errors.Is(err, ErrAuth) && !errors.Is(err, ErrMalformed) && !errors.Is(err, io.ErrUnexpectedEOF):
			t.Fatalf("open = %v, want ErrAuth, ErrMalformed or io.ErrUnexpectedEOF", err)
		case err == nil && (!isValid || string(pt) != want):
			t.Fatalf("open(%x) succeeded on a forgery", b)
		}
		r, err := NewRangeReader(bytes.NewReader(b), int64(len(b)), dk, v.Binding, off, n)
		if err == nil {
			pt, err = io.ReadAll(r)
		}
		if err == nil {
			if !isValid {
				t.Fatalf("range read of %x succeeded on a forgery", b)
			}
			end := off + min(n, int64(len(want))-off)
			if string(pt) != want[off:end] {
				t.Fatalf("range [%d,+%d) = %q, want %q", off, n, pt, want[off:end])
			}
		}
	})
}
