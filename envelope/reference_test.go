package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the current implementation")

// refHKDF is HKDF-SHA256 written out from RFC 5869 §2.2–2.3 with crypto/hmac,
// independent of crypto/hkdf.
func refHKDF(ikm, salt []byte, info string, length int) []byte {
	ext := hmac.New(sha256.New, salt)
	ext.Write(ikm)
	prk := ext.Sum(nil)
	var okm, t []byte
	for i := byte(1); len(okm) < length; i++ {
		m := hmac.New(sha256.New, prk)
		m.Write(t)
		m.Write([]byte(info))
		m.Write([]byte{i})
		t = m.Sum(nil)
		okm = append(okm, t...)
	}
	return okm[:length]
}

func refGCM(t *testing.T, key []byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

// refAD is the binding encoding written out field by field.
func refAD(b Binding) []byte {
	var out []byte
	for _, f := range []string{"domicile/binding/v1", b.Cell, b.Subject, b.Kind, b.ID} {
		out = append(out, byte(len(f)>>24), byte(len(f)>>16), byte(len(f)>>8), byte(len(f)))
		out = append(out, f...)
	}
	return binary.BigEndian.AppendUint64(out, uint64(b.Version))
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRefHKDFMatchesRFC5869(t *testing.T) {
	// RFC 5869 Appendix A.1, test case 1.
	ikm := unhex(t, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b")
	salt := unhex(t, "000102030405060708090a0b0c")
	info := string(unhex(t, "f0f1f2f3f4f5f6f7f8f9"))
	want := "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
	if got := hex.EncodeToString(refHKDF(ikm, salt, info, 42)); got != want {
		t.Fatalf("refHKDF = %s, want %s", got, want)
	}
}

// TestRecordMatchesReference rebuilds a sealed record from the written-down
// construction with independent code.
func TestRecordMatchesReference(t *testing.T) {
	dk := MustKey(t)
	salt := bytes.Repeat([]byte{0x5a}, SaltSize)
	pt := []byte("a profile record")
	got, err := SealRecord(bytes.NewReader(salt), dk, 9, testBinding, pt)
	if err != nil {
		t.Fatal(err)
	}
	header := append([]byte{0x01, 9}, salt...)
	aead := refGCM(t, refHKDF(dk, salt, "domicile/record/v1", 32))
	want := aead.Seal(bytes.Clone(header), make([]byte, 12), pt, append(bytes.Clone(header), refAD(testBinding)...))
	if !bytes.Equal(got, want) {
		t.Errorf("SealRecord = %x\nwant          %x", got, want)
	}
}

// TestStreamMatchesReference rebuilds a two-chunk sealed object from the
// written-down construction with independent code.
func TestStreamMatchesReference(t *testing.T) {
	dk := MustKey(t)
	salt := bytes.Repeat([]byte{0xa5}, SaltSize)
	pt := pattern(ChunkSize + 5)
	var got bytes.Buffer
	w, err := NewWriter(bytes.NewReader(salt), &got, dk, 3, testBinding)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(pt)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	header := append(append([]byte{0x02, 3}, salt...), 0, 1, 0, 0)
	aead := refGCM(t, refHKDF(dk, salt, "domicile/object/v1", 32))
	ad := append(bytes.Clone(header), refAD(testBinding)...)
	n0 := make([]byte, 12)
	n1 := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}
	want := aead.Seal(bytes.Clone(header), n0, pt[:ChunkSize], ad)
	want = aead.Seal(want, n1, pt[ChunkSize:], ad)
	if !bytes.Equal(got.Bytes(), want) {
		t.Error("sealed object differs from the reference construction")
	}
}

// vectors are fixed test vectors: a change to any encoding shows up here.
type vectors struct {
	DataKey      string `json:"data_key"`
	Salt         string `json:"salt"`
	Binding      Binding
	Plaintext    string `json:"plaintext"`
	Record       string `json:"record"`
	Object       string `json:"object"`
	EmptyObject  string `json:"empty_object"`
	Wrapped      string `json:"wrapped"`
	Fingerprint  string `json:"fingerprint"`
	BindingAD    string `json:"binding_ad"`
	RecordKeyGen uint8  `json:"record_key_gen"`
}

func makeVectors(t *testing.T, dk, salt []byte, b Binding, pt []byte) vectors {
	t.Helper()
	rec, err := SealRecord(bytes.NewReader(salt), dk, 4, b, pt)
	if err != nil {
		t.Fatal(err)
	}
	obj := func(pt []byte) string {
		var buf bytes.Buffer
		w, err := NewWriter(bytes.NewReader(salt), &buf, dk, 4, b)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(pt)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(buf.Bytes())
	}
	wr, err := Wrapped{KEKID: "local:cn-gz1", KEKVersion: 2, Ciphertext: []byte("wrapped-key-bytes")}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return vectors{
		DataKey:      hex.EncodeToString(dk),
		Salt:         hex.EncodeToString(salt),
		Binding:      b,
		Plaintext:    string(pt),
		Record:       hex.EncodeToString(rec),
		Object:       obj(pt),
		EmptyObject:  obj(nil),
		Wrapped:      hex.EncodeToString(wr),
		Fingerprint:  Fingerprint(dk),
		BindingAD:    hex.EncodeToString(b.AD()),
		RecordKeyGen: 4,
	}
}

func loadVectors(tb testing.TB) vectors {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		tb.Fatal(err)
	}
	return v
}

// TestVectors checks the implementation against testdata/vectors.json, and
// that each vector opens. Run with -update to regenerate after a deliberate
// format change (which also needs a new version byte).
func TestVectors(t *testing.T) {
	path := filepath.Join("testdata", "vectors.json")
	dk := bytes.Repeat([]byte{0x42}, KeySize)
	salt := bytes.Repeat([]byte{0x17}, SaltSize)
	b := Binding{Cell: "cn-gz1", Subject: "subject-1", Kind: "profile", ID: "r1", Version: 1}
	got := makeVectors(t, dk, salt, b, []byte("hello, domicile"))
	if *update {
		data, _ := json.MarshalIndent(got, "", "\t")
		if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := loadVectors(t)
	if got != want {
		t.Fatalf("vectors changed:\n got %+v\nwant %+v", got, want)
	}
	pt, err := OpenRecord(dk, b, unhex(t, want.Record))
	if err != nil || string(pt) != want.Plaintext {
		t.Errorf("OpenRecord(vector) = %q, %v", pt, err)
	}
	pt, err = openObject(dk, b, unhex(t, want.Object))
	if err != nil || string(pt) != want.Plaintext {
		t.Errorf("open object vector = %q, %v", pt, err)
	}
	pt, err = openObject(dk, b, unhex(t, want.EmptyObject))
	if err != nil || len(pt) != 0 {
		t.Errorf("open empty object vector = %q, %v", pt, err)
	}
}
