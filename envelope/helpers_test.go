package envelope

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// MustKey returns a fresh random data key.
func MustKey(tb testing.TB) []byte {
	tb.Helper()
	k := make([]byte, KeySize)
	if _, err := io.ReadFull(newRand(tb), k); err != nil {
		tb.Fatal(err)
	}
	return k
}

var seedCounter uint64

// newRand returns a deterministic randomness source, distinct per call.
func newRand(tb testing.TB) io.Reader {
	tb.Helper()
	seedCounter++
	var seed [32]byte
	copy(seed[:], tb.Name())
	seed[31] = byte(seedCounter)
	seed[30] = byte(seedCounter >> 8)
	return rand.NewChaCha8(seed)
}

// testBinding is a typical binding.
var testBinding = Binding{Cell: "cn-gz1", Subject: "u-1234", Kind: "profile", ID: "rec-1", Version: 3}

// pattern returns n bytes of deterministic, non-repeating-per-chunk content.
func pattern(n int) []byte {
	p := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	_, _ = r.Read(p)
	return p
}

// MustSealObject seals pt as an object and returns the sealed bytes.
func MustSealObject(tb testing.TB, dk []byte, b Binding, pt []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(newRand(tb), &buf, dk, 7, b)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(pt); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// openObject reads a whole sealed object with NewReader.
func openObject(dk []byte, b Binding, sealed []byte) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(sealed), dk, b)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
