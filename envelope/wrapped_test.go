package envelope

import (
	"bytes"
	"encoding/hex"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestWrappedRoundTrip(t *testing.T) {
	tests := []Wrapped{
		{KEKID: "local:cn-gz1", KEKVersion: 1, Ciphertext: []byte{1, 2, 3}},
		{KEKID: "x", KEKVersion: 0, Ciphertext: []byte{0}},
		{KEKID: strings.Repeat("k", MaxKEKIDLen), KEKVersion: 1<<32 - 1, Ciphertext: bytes.Repeat([]byte{0xff}, MaxWrappedCiphertextLen)},
	}
	for _, w := range tests {
		b, err := w.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary(%v) = %v", w.KEKID, err)
		}
		got, err := ParseWrapped(b)
		if err != nil {
			t.Fatalf("ParseWrapped(MarshalBinary(%v)) = %v", w.KEKID, err)
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("round trip mismatch (-want +got):\n%s", diff)
		}
	}
}

func TestWrappedLayout(t *testing.T) {
	b, err := Wrapped{KEKID: "k1", KEKVersion: 0x01020304, Ciphertext: []byte{0xaa, 0xbb}}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x03, 2, 'k', '1', 1, 2, 3, 4, 0, 2, 0xaa, 0xbb}
	if !bytes.Equal(b, want) {
		t.Errorf("MarshalBinary = %x, want %x", b, want)
	}
}

func TestWrappedRejects(t *testing.T) {
	valid, _ := Wrapped{KEKID: "k1", KEKVersion: 7, Ciphertext: []byte{0xaa, 0xbb}}.MarshalBinary()
	bad := map[string]Wrapped{
		"empty_id":           {KEKID: "", Ciphertext: []byte{1}},
		"space_in_id":        {KEKID: "a b", Ciphertext: []byte{1}},
		"nonascii_id":        {KEKID: "ключ", Ciphertext: []byte{1}},
		"long_id":            {KEKID: strings.Repeat("k", MaxKEKIDLen+1), Ciphertext: []byte{1}},
		"empty_ciphertext":   {KEKID: "k"},
		"long_ciphertext":    {KEKID: "k", Ciphertext: make([]byte, MaxWrappedCiphertextLen+1)},
		"control_char_in_id": {KEKID: "k\n", Ciphertext: []byte{1}},
	}
	for name, w := range bad {
		t.Run("marshal_"+name+"_fails", func(t *testing.T) {
			if _, err := w.MarshalBinary(); !errors.Is(err, ErrMalformed) {
				t.Errorf("MarshalBinary = %v, want ErrMalformed", err)
			}
		})
	}
	badBytes := map[string][]byte{
		"empty":           nil,
		"version":         append([]byte{0x02}, valid[1:]...),
		"trailing":        append(bytes.Clone(valid), 0),
		"truncated":       valid[:len(valid)-1],
		"id_len_too_big":  {0x03, 200, 'k'},
		"zero_ct_len":     {0x03, 1, 'k', 0, 0, 0, 1, 0, 0},
		"zero_id_len":     {0x03, 0, 0, 0, 0, 1, 0, 1, 0xaa},
		"ct_len_mismatch": {0x03, 1, 'k', 0, 0, 0, 1, 0, 2, 0xaa},
		"ct_over_max":     append([]byte{0x03, 1, 'k', 0, 0, 0, 1, 0x10, 0x01}, make([]byte, MaxWrappedCiphertextLen+1)...),
	}
	for name, b := range badBytes {
		t.Run("parse_"+name+"_fails", func(t *testing.T) {
			if w, err := ParseWrapped(b); !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseWrapped(%x) = %+v, %v, want ErrMalformed", b, w, err)
			}
		})
	}
}

func TestWrappedParseDoesNotAlias(t *testing.T) {
	b, _ := Wrapped{KEKID: "k", Ciphertext: []byte{1, 2}}.MarshalBinary()
	w, _ := ParseWrapped(b)
	b[len(b)-1] = 9
	if w.Ciphertext[1] != 2 {
		t.Error("ParseWrapped result aliases its input")
	}
}

func TestWrappedLogValueHidesCiphertext(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("wrap", "key", Wrapped{KEKID: "k", KEKVersion: 2, Ciphertext: []byte("SECRETBYTES")})
	if s := buf.String(); strings.Contains(s, "SECRETBYTES") || !strings.Contains(s, "key.kek_id=k") {
		t.Errorf("log line %q: want KEK id and no ciphertext", s)
	}
}

func TestFingerprint(t *testing.T) {
	a, b := MustKey(t), MustKey(t)
	fa := Fingerprint(a)
	if len(fa) != 32 || strings.Trim(fa, "0123456789abcdef") != "" {
		t.Errorf("Fingerprint = %q, want 32 lowercase hex digits", fa)
	}
	if fa != Fingerprint(bytes.Clone(a)) {
		t.Error("Fingerprint is not deterministic")
	}
	if fa == Fingerprint(b) {
		t.Error("two keys share a fingerprint")
	}
	if strings.Contains(fa, hex.EncodeToString(a[:4])) {
		t.Error("fingerprint contains key bytes")
	}
}
