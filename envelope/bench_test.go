package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"testing"
)

// The Raw benchmarks measure bare AES-256-GCM with a key set up once, the
// floor that SealRecord, OpenRecord and the chunk stream are compared with in
// doc/performance.md. They are in this file so that all figures come from
// the same run.

func rawAEAD(b *testing.B) cipher.AEAD {
	b.Helper()
	block, err := aes.NewCipher(MustKey(b))
	if err != nil {
		b.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return aead
}

func benchRawSeal(b *testing.B, size int) {
	aead := rawAEAD(b)
	pt := pattern(size)
	ad := testBinding.AD()
	out := make([]byte, 0, size+TagSize)
	nonce := make([]byte, 12)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint64(nonce[4:], uint64(i)) // a distinct nonce per seal
		out = aead.Seal(out[:0], nonce, pt, ad)
	}
}

func benchRawOpen(b *testing.B, size int) {
	aead := rawAEAD(b)
	ad := testBinding.AD()
	nonce := make([]byte, 12)
	sealed := aead.Seal(nil, nonce, pattern(size), ad)
	out := make([]byte, 0, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if out, err = aead.Open(out[:0], nonce, sealed, ad); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawGCM1K(b *testing.B)      { benchRawSeal(b, 1<<10) }
func BenchmarkRawGCMOpen1K(b *testing.B)  { benchRawOpen(b, 1<<10) }
func BenchmarkRawGCM64K(b *testing.B)     { benchRawSeal(b, ChunkSize) }
func BenchmarkRawGCMOpen64K(b *testing.B) { benchRawOpen(b, ChunkSize) }

func benchSealRecord(b *testing.B, size int) {
	dk := MustKey(b)
	pt := pattern(size)
	rnd := newRand(b)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SealRecord(rnd, dk, 1, testBinding, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOpenRecord(b *testing.B, size int) {
	dk := MustKey(b)
	sealed, err := SealRecord(newRand(b), dk, 1, testBinding, pattern(size))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := OpenRecord(dk, testBinding, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealRecord1K(b *testing.B)  { benchSealRecord(b, 1<<10) }
func BenchmarkOpenRecord1K(b *testing.B)  { benchOpenRecord(b, 1<<10) }
func BenchmarkSealRecord64K(b *testing.B) { benchSealRecord(b, ChunkSize) }
func BenchmarkOpenRecord64K(b *testing.B) { benchOpenRecord(b, ChunkSize) }

// BenchmarkSealChunk64K measures the object writer per 64 KiB chunk in
// steady state (one object, many chunks).
func BenchmarkSealChunk64K(b *testing.B) {
	w, err := NewWriter(newRand(b), io.Discard, MustKey(b), 1, testBinding)
	if err != nil {
		b.Fatal(err)
	}
	chunk := pattern(ChunkSize)
	b.SetBytes(ChunkSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenChunk64K measures the object reader per 64 KiB chunk over a
// 64-chunk (4 MiB) object.
func BenchmarkOpenChunk64K(b *testing.B) {
	const n = 64
	dk := MustKey(b)
	sealed := MustSealObject(b, dk, testBinding, pattern(n*ChunkSize))
	buf := make([]byte, ChunkSize)
	src := bytes.NewReader(sealed)
	r, err := NewReader(src, dk, testBinding)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(ChunkSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.ReadFull(r, buf); err == io.EOF {
			b.StopTimer()
			src.Reset(sealed)
			if r, err = NewReader(src, dk, testBinding); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := io.ReadFull(r, buf); err != nil {
				b.Fatal(err)
			}
		} else if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRangeRead1K measures a 1 KiB range read from a 4 MiB object:
// header, one chunk and key setup.
func BenchmarkRangeRead1K(b *testing.B) {
	dk := MustKey(b)
	sealed := MustSealObject(b, dk, testBinding, pattern(64*ChunkSize))
	src := bytes.NewReader(sealed)
	buf := make([]byte, 1<<10)
	b.SetBytes(1 << 10)
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewRangeReader(src, int64(len(sealed)), dk, testBinding, 20*ChunkSize+100, 1<<10)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeriveKey measures the per-message cost the design adds over raw
// GCM: HKDF-SHA256 plus AES key schedule and GCM setup.
func BenchmarkDeriveKey(b *testing.B) {
	dk := MustKey(b)
	salt := make([]byte, SaltSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := deriveAEAD(dk, salt, infoRecord); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHKDF measures HKDF-SHA256 alone.
func BenchmarkHKDF(b *testing.B) {
	dk := MustKey(b)
	salt := make([]byte, SaltSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hkdf.Key(sha256.New, dk, salt, infoRecord, 32); err != nil {
			b.Fatal(err)
		}
	}
}
