package envelope

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"pgregory.net/rapid"
)

func TestRecordRoundTrip(t *testing.T) {
	dk := MustKey(t)
	for _, size := range []int{0, 1, 15, 16, 17, 1 << 10, 100 << 10} {
		pt := pattern(size)
		for _, gen := range []uint8{0, 1, 255} {
			sealed, err := SealRecord(newRand(t), dk, gen, testBinding, pt)
			if err != nil {
				t.Fatalf("SealRecord(%d bytes) = %v", size, err)
			}
			if got, want := len(sealed), size+RecordOverhead; got != want {
				t.Errorf("len(SealRecord(%d bytes)) = %d, want %d", size, got, want)
			}
			if g, err := RecordKeyGen(sealed); err != nil || g != gen {
				t.Errorf("RecordKeyGen = %d, %v, want %d, nil", g, err, gen)
			}
			got, err := OpenRecord(dk, testBinding, sealed)
			if err != nil {
				t.Fatalf("OpenRecord(%d bytes) = %v", size, err)
			}
			if got == nil || !bytes.Equal(got, pt) {
				t.Errorf("OpenRecord(%d bytes) returned different plaintext", size)
			}
		}
	}
}

func TestRecordFreshSaltEachSeal(t *testing.T) {
	dk := MustKey(t)
	a, _ := SealRecord(nil, dk, 0, testBinding, []byte("same"))
	b, _ := SealRecord(nil, dk, 0, testBinding, []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical; salt not fresh")
	}
	if bytes.Contains(a, []byte("same")) {
		t.Fatal("sealed record contains the plaintext")
	}
}

func TestRecordWrongBindingFails(t *testing.T) {
	dk := MustKey(t)
	sealed, err := SealRecord(newRand(t), dk, 0, testBinding, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Binding)
	}{
		{"cell", func(b *Binding) { b.Cell = "eu-fra1" }},
		{"subject", func(b *Binding) { b.Subject = "u-1235" }},
		{"kind", func(b *Binding) { b.Kind = "message" }},
		{"id", func(b *Binding) { b.ID = "rec-2" }},
		{"version", func(b *Binding) { b.Version = 4 }},
		{"version-negative", func(b *Binding) { b.Version = -3 }},
		{"field-boundary-shift", func(b *Binding) { b.Cell, b.Subject = "cn-gz1u", "-1234" }},
		{"zero", func(b *Binding) { *b = Binding{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name+"_fails", func(t *testing.T) {
			b := testBinding
			tt.edit(&b)
			got, err := OpenRecord(dk, b, sealed)
			if !errors.Is(err, ErrAuth) || got != nil {
				t.Errorf("OpenRecord(binding %+v) = %q, %v, want nil, ErrAuth", b, got, err)
			}
		})
	}
	t.Run("wrong_key_fails", func(t *testing.T) {
		got, err := OpenRecord(MustKey(t), testBinding, sealed)
		if !errors.Is(err, ErrAuth) || got != nil {
			t.Errorf("OpenRecord(other key) = %q, %v, want nil, ErrAuth", got, err)
		}
	})
}

// TestRecordEveryBitFlipFails flips each bit of sealed records of random
// content and sizes, and checks that none opens.
func TestRecordEveryBitFlipFails(t *testing.T) {
	dk := MustKey(t)
	rapid.Check(t, func(t *rapid.T) {
		pt := rapid.SliceOfN(rapid.Byte(), 0, 80).Draw(t, "plaintext")
		gen := rapid.Uint8().Draw(t, "keyGen")
		sealed, err := SealRecord(nil, dk, gen, testBinding, pt)
		if err != nil {
			t.Fatal(err)
		}
		for bit := range len(sealed) * 8 {
			c := bytes.Clone(sealed)
			c[bit/8] ^= 1 << (bit % 8)
			got, err := OpenRecord(dk, testBinding, c)
			if err == nil || got != nil {
				t.Fatalf("OpenRecord with bit %d flipped = %q, %v, want error", bit, got, err)
			}
			want := ErrAuth
			if bit < 8 {
				want = ErrMalformed
			}
			if !errors.Is(err, want) {
				t.Fatalf("OpenRecord with bit %d flipped = %v, want %v", bit, err, want)
			}
		}
	})
}

func TestRecordTruncatedOrExtendedFails(t *testing.T) {
	dk := MustKey(t)
	sealed, _ := SealRecord(newRand(t), dk, 0, testBinding, []byte("a record of some length"))
	for n := range len(sealed) {
		got, err := OpenRecord(dk, testBinding, sealed[:n])
		want := ErrAuth
		if n < RecordOverhead {
			want = ErrMalformed
		}
		if !errors.Is(err, want) || got != nil {
			t.Errorf("OpenRecord(first %d bytes) = %q, %v, want nil, %v", n, got, err, want)
		}
	}
	for _, extra := range [][]byte{{0}, make([]byte, 16), []byte("xyz")} {
		got, err := OpenRecord(dk, testBinding, append(bytes.Clone(sealed), extra...))
		if !errors.Is(err, ErrAuth) || got != nil {
			t.Errorf("OpenRecord(+%d bytes) = %q, %v, want nil, ErrAuth", len(extra), got, err)
		}
	}
}

func TestRecordMovedBetweenRecordsFails(t *testing.T) {
	// Splicing the header of one record onto the body of another fails.
	dk := MustKey(t)
	a, _ := SealRecord(newRand(t), dk, 0, testBinding, []byte("record a"))
	b, _ := SealRecord(newRand(t), dk, 0, testBinding, []byte("record b"))
	spliced := append(bytes.Clone(a[:RecordHeaderSize]), b[RecordHeaderSize:]...)
	if got, err := OpenRecord(dk, testBinding, spliced); !errors.Is(err, ErrAuth) {
		t.Errorf("OpenRecord(spliced) = %q, %v, want ErrAuth", got, err)
	}
	// A sealed object is not a record, and vice versa.
	obj := MustSealObject(t, dk, testBinding, []byte("record a"))
	if _, err := OpenRecord(dk, testBinding, obj); !errors.Is(err, ErrMalformed) {
		t.Errorf("OpenRecord(object) = %v, want ErrMalformed", err)
	}
	if _, err := openObject(dk, testBinding, a); !errors.Is(err, ErrMalformed) {
		t.Errorf("NewReader(record) = %v, want ErrMalformed", err)
	}
}

func TestRecordBadInputs(t *testing.T) {
	dk := MustKey(t)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"short_key", func() error { _, err := SealRecord(nil, dk[:16], 0, testBinding, nil); return err }, "data key is 16 bytes"},
		{"long_key_open", func() error {
			s, _ := SealRecord(nil, dk, 0, testBinding, nil)
			_, err := OpenRecord(append(bytes.Clone(dk), 0), testBinding, s)
			return err
		}, "data key is 33 bytes"},
		{"failing_rand", func() error {
			_, err := SealRecord(iotest.ErrReader(errors.New("no entropy")), dk, 0, testBinding, nil)
			return err
		}, "read random salt"},
		{"short_rand", func() error {
			_, err := SealRecord(strings.NewReader("short"), dk, 0, testBinding, nil)
			return err
		}, "read random salt"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"_errors", func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseRecordHeader(t *testing.T) {
	dk := MustKey(t)
	sealed, _ := SealRecord(newRand(t), dk, 42, testBinding, []byte("x"))
	h, err := ParseRecordHeader(sealed)
	if err != nil || h.KeyGen != 42 || !bytes.Equal(h.Salt[:], sealed[2:34]) {
		t.Fatalf("ParseRecordHeader = %+v, %v", h, err)
	}
	enc, _ := h.MarshalBinary()
	if !bytes.Equal(enc, sealed[:RecordHeaderSize]) {
		t.Errorf("MarshalBinary = %x, want %x", enc, sealed[:RecordHeaderSize])
	}
	for _, bad := range [][]byte{nil, {1}, sealed[:RecordOverhead-1], append([]byte{2}, sealed[1:]...), append([]byte{0}, sealed[1:]...)} {
		if _, err := ParseRecordHeader(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseRecordHeader(%x) = %v, want ErrMalformed", bad, err)
		}
		if _, err := RecordKeyGen(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("RecordKeyGen(%x) = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestBindingADUnambiguous(t *testing.T) {
	// Distinct bindings give distinct encodings, including ones whose
	// concatenated fields are equal.
	rapid.Check(t, func(t *rapid.T) {
		gen := rapid.Custom(func(t *rapid.T) Binding {
			s := rapid.StringOfN(rapid.RuneFrom([]rune("ab\x00")), 0, 3, -1)
			return Binding{s.Draw(t, "cell"), s.Draw(t, "subject"), s.Draw(t, "kind"), s.Draw(t, "id"), rapid.Int64Range(-2, 2).Draw(t, "version")}
		})
		a, b := gen.Draw(t, "a"), gen.Draw(t, "b")
		if (a == b) != bytes.Equal(a.AD(), b.AD()) {
			t.Fatalf("AD(%+v) = %x, AD(%+v) = %x", a, a.AD(), b, b.AD())
		}
	})
}

func TestBindingADLayout(t *testing.T) {
	got := Binding{Cell: "c", Subject: "s", Kind: "k", ID: "i", Version: -1}.AD()
	want := []byte("\x00\x00\x00\x13domicile/binding/v1" +
		"\x00\x00\x00\x01c\x00\x00\x00\x01s\x00\x00\x00\x01k\x00\x00\x00\x01i" +
		"\xff\xff\xff\xff\xff\xff\xff\xff")
	if !bytes.Equal(got, want) {
		t.Errorf("AD = %q, want %q", got, want)
	}
}
