package envelope

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"pgregory.net/rapid"
)

// sizes exercised by the stream tests: empty, tiny, around the chunk
// boundary, and several MiB.
var streamSizes = []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2*ChunkSize + 17, 3<<20 + 5}

func TestStreamRoundTrip(t *testing.T) {
	dk := MustKey(t)
	for _, size := range streamSizes {
		pt := pattern(size)
		sealed := MustSealObject(t, dk, testBinding, pt)
		if got, want := int64(len(sealed)), SealedSize(int64(size)); got != want {
			t.Errorf("len(sealed %d bytes) = %d, SealedSize = %d", size, got, want)
		}
		if got, err := PlaintextSize(int64(len(sealed))); err != nil || got != int64(size) {
			t.Errorf("PlaintextSize(%d) = %d, %v, want %d", len(sealed), got, err, size)
		}
		h, err := ParseStreamHeader(sealed)
		if err != nil || h.KeyGen != 7 {
			t.Errorf("ParseStreamHeader = %+v, %v, want KeyGen 7", h, err)
		}
		for name, wrap := range map[string]func(io.Reader) io.Reader{
			"plain":   func(r io.Reader) io.Reader { return r },
			"onebyte": iotest.OneByteReader,
			"half":    iotest.HalfReader,
			"dataerr": iotest.DataErrReader,
		} {
			if name == "onebyte" && size > 4*ChunkSize {
				continue // slow and adds nothing over the smaller sizes
			}
			r, err := NewReader(wrap(bytes.NewReader(sealed)), dk, testBinding)
			if err != nil {
				t.Fatalf("NewReader(%d bytes, %s) = %v", size, name, err)
			}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, pt) {
				t.Errorf("read %d-byte object (%s): %d bytes, %v; want equal plaintext", size, name, len(got), err)
			}
			if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("Read after EOF = %d, %v, want 0, EOF", n, err)
			}
		}
	}
}

// TestStreamWriteSplits checks that the sealed bytes do not depend on how the
// plaintext is split into Write calls.
func TestStreamWriteSplits(t *testing.T) {
	dk := MustKey(t)
	pt := pattern(3*ChunkSize + 100)
	salt := bytes.Repeat([]byte{9}, SaltSize)
	var want []byte
	rapid.Check(t, func(t *rapid.T) {
		var buf bytes.Buffer
		w, err := NewWriter(bytes.NewReader(salt), &buf, dk, 1, testBinding)
		if err != nil {
			t.Fatal(err)
		}
		rest := pt
		for len(rest) > 0 {
			n := rapid.IntRange(0, 2*ChunkSize).Draw(t, "write")
			n = min(n, len(rest))
			if m, err := w.Write(rest[:n]); m != n || err != nil {
				t.Fatalf("Write(%d) = %d, %v", n, m, err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if want == nil {
			want = bytes.Clone(buf.Bytes())
		} else if !bytes.Equal(buf.Bytes(), want) {
			t.Fatal("sealed output depends on write sizes")
		}
	})
}

func TestSealedSizeInverse(t *testing.T) {
	check := func(n int64) {
		s := SealedSize(n)
		if got, err := PlaintextSize(s); err != nil || got != n {
			t.Errorf("PlaintextSize(SealedSize(%d) = %d) = %d, %v", n, s, got, err)
		}
	}
	for n := int64(0); n < 3*ChunkSize+2; n++ {
		check(n)
	}
	check(1 << 40)
	// Every sealed size either maps back exactly or is rejected.
	valid := 0
	for s := int64(0); s < SealedSize(3*ChunkSize)+2; s++ {
		n, err := PlaintextSize(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("PlaintextSize(%d) = %v, want ErrMalformed", s, err)
			}
			continue
		}
		valid++
		if SealedSize(n) != s {
			t.Fatalf("SealedSize(PlaintextSize(%d) = %d) = %d", s, n, SealedSize(n))
		}
	}
	if want := 3*ChunkSize + 1; valid != want {
		t.Errorf("%d valid sealed sizes below %d, want %d", valid, SealedSize(3*ChunkSize)+2, want)
	}
	for _, n := range []int64{-1, 1<<63 - 1, 1<<63 - 1000} {
		if got := SealedSize(n); got != -1 {
			t.Errorf("SealedSize(%d) = %d, want -1", n, got)
		}
	}
	// The size of a stream with an empty final chunk after a full one.
	if _, err := PlaintextSize(StreamHeaderSize + encChunkSize + TagSize); !errors.Is(err, ErrMalformed) {
		t.Errorf("PlaintextSize(full chunk + empty final) = %v, want ErrMalformed", err)
	}
}

// chunks splits a sealed object into its header and sealed chunks.
func chunks(sealed []byte) (header []byte, cs [][]byte) {
	header, rest := sealed[:StreamHeaderSize], sealed[StreamHeaderSize:]
	for len(rest) > 0 {
		n := min(encChunkSize, len(rest))
		cs = append(cs, rest[:n])
		rest = rest[n:]
	}
	return header, cs
}

func join(header []byte, cs ...[]byte) []byte {
	return bytes.Join(append([][]byte{header}, cs...), nil)
}

func TestStreamTamperingFails(t *testing.T) {
	dk := MustKey(t)
	pt := pattern(3*ChunkSize + 1000) // four chunks, the last short
	sealed := MustSealObject(t, dk, testBinding, pt)
	hdr, cs := chunks(sealed)
	if len(cs) != 4 {
		t.Fatalf("%d chunks, want 4", len(cs))
	}
	full := MustSealObject(t, dk, testBinding, pattern(2*ChunkSize)) // two full chunks
	fhdr, fcs := chunks(full)
	other := MustSealObject(t, dk, testBinding, pt) // same key, binding, plaintext; other salt
	ohdr, ocs := chunks(other)
	b2 := testBinding
	b2.ID = "rec-2"
	otherBinding := MustSealObject(t, dk, b2, pt)
	_, bcs := chunks(otherBinding)

	tests := []struct {
		name   string
		sealed []byte
		want   error
	}{
		{"swap_chunks_1_2", join(hdr, cs[0], cs[2], cs[1], cs[3]), ErrAuth},
		{"swap_first_last_full", join(fhdr, fcs[1], fcs[0]), ErrAuth},
		{"drop_final_chunk", join(hdr, cs[0], cs[1], cs[2]), ErrAuth},
		{"drop_final_full_chunk", join(fhdr, fcs[0]), ErrAuth},
		{"drop_middle_chunk", join(hdr, cs[0], cs[2], cs[3]), ErrAuth},
		{"duplicate_chunk", join(hdr, cs[0], cs[0], cs[1], cs[2], cs[3]), ErrAuth},
		{"final_chunk_repeated", join(hdr, cs[0], cs[1], cs[2], cs[3], cs[3]), ErrAuth},
		{"trailing_byte", append(bytes.Clone(sealed), 0), ErrAuth},
		{"trailing_tag_size", append(bytes.Clone(sealed), make([]byte, TagSize)...), ErrAuth},
		{"trailing_full_chunk", append(bytes.Clone(full), cs[0]...), ErrAuth},
		{"chunk_from_other_object", join(hdr, cs[0], ocs[1], cs[2], cs[3]), ErrAuth},
		{"header_from_other_object", join(ohdr, cs...), ErrAuth},
		{"chunk_from_other_binding", join(hdr, cs[0], bcs[1], cs[2], cs[3]), ErrAuth},
		{"keygen_changed", append([]byte{2, 8}, sealed[2:]...), ErrAuth},
		{"version_changed", append([]byte{1}, sealed[1:]...), ErrMalformed},
		{"chunk_size_changed", join(append(bytes.Clone(hdr[:StreamHeaderSize-4]), 0, 0, 0x80, 0), cs...), ErrMalformed},
		{"header_only", bytes.Clone(hdr), io.ErrUnexpectedEOF},
		{"header_truncated", bytes.Clone(hdr[:10]), io.ErrUnexpectedEOF},
		{"empty", nil, io.ErrUnexpectedEOF},
		{"final_tag_truncated", sealed[:len(sealed)-TagSize+3], ErrAuth},
		{"cut_after_lookahead", sealed[:StreamHeaderSize+encChunkSize+5], io.ErrUnexpectedEOF},
	}
	// Truncation at every chunk boundary.
	for i := range cs {
		tests = append(tests, struct {
			name   string
			sealed []byte
			want   error
		}{"truncate_at_boundary_" + string(rune('0'+i)), join(hdr, cs[:i]...), nil})
	}
	for _, tt := range tests {
		t.Run(tt.name+"_fails", func(t *testing.T) {
			got, err := openObject(dk, testBinding, tt.sealed)
			if err == nil {
				t.Fatalf("opened tampered object (%d bytes of plaintext)", len(got))
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("open = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("wrong_binding_fails", func(t *testing.T) {
		for _, b := range []Binding{
			{Cell: "x", Subject: testBinding.Subject, Kind: testBinding.Kind, ID: testBinding.ID, Version: testBinding.Version},
			{Cell: testBinding.Cell, Subject: "x", Kind: testBinding.Kind, ID: testBinding.ID, Version: testBinding.Version},
			{Cell: testBinding.Cell, Subject: testBinding.Subject, Kind: "x", ID: testBinding.ID, Version: testBinding.Version},
			{Cell: testBinding.Cell, Subject: testBinding.Subject, Kind: testBinding.Kind, ID: "x", Version: testBinding.Version},
			{Cell: testBinding.Cell, Subject: testBinding.Subject, Kind: testBinding.Kind, ID: testBinding.ID, Version: 99},
		} {
			if _, err := NewReader(bytes.NewReader(sealed), dk, b); !errors.Is(err, ErrAuth) {
				t.Errorf("NewReader(binding %+v) = %v, want ErrAuth", b, err)
			}
		}
		if _, err := NewReader(bytes.NewReader(sealed), MustKey(t), testBinding); !errors.Is(err, ErrAuth) {
			t.Errorf("NewReader(wrong key) = %v, want ErrAuth", err)
		}
	})
}

// TestStreamNonCanonicalEmptyFinalChunkFails builds, with the right key, an
// object whose full last chunk is followed by an empty final chunk. The
// writer never makes one; the reader must refuse it.
func TestStreamNonCanonicalEmptyFinalChunkFails(t *testing.T) {
	dk := MustKey(t)
	var hdr StreamHeader
	header, _ := hdr.MarshalBinary()
	aead, err := deriveAEAD(dk, hdr.Salt[:], infoStream)
	if err != nil {
		t.Fatal(err)
	}
	ad := streamAD(header, testBinding)
	var nonce [12]byte
	c0 := aead.Seal(nil, chunkNonce(&nonce, 0, false), pattern(ChunkSize), ad)
	c1 := aead.Seal(nil, chunkNonce(&nonce, 1, true), nil, ad)
	_, err = openObject(dk, testBinding, join(header, c0, c1))
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("open(full chunk + empty final chunk) = %v, want ErrMalformed", err)
	}
	// The same stream without the empty chunk, but c0 sealed as final, opens.
	c0last := aead.Seal(nil, chunkNonce(&nonce, 0, true), pattern(ChunkSize), ad)
	if got, err := openObject(dk, testBinding, join(header, c0last)); err != nil || len(got) != ChunkSize {
		t.Errorf("open(one full final chunk) = %d bytes, %v", len(got), err)
	}
}

// TestStreamChunkBitFlipsFail flips every bit of a small object (header and
// its one chunk), and random bits of a multi-chunk object.
func TestStreamChunkBitFlipsFail(t *testing.T) {
	dk := MustKey(t)
	small := MustSealObject(t, dk, testBinding, pattern(100))
	for bit := range len(small) * 8 {
		c := bytes.Clone(small)
		c[bit/8] ^= 1 << (bit % 8)
		if got, err := openObject(dk, testBinding, c); err == nil || got != nil {
			t.Fatalf("opened object with bit %d flipped: %d bytes, %v", bit, len(got), err)
		}
	}
	big := MustSealObject(t, dk, testBinding, pattern(2*ChunkSize+500))
	rapid.Check(t, func(rt *rapid.T) {
		bit := rapid.IntRange(0, len(big)*8-1).Draw(rt, "bit")
		big[bit/8] ^= 1 << (bit % 8)
		defer func() { big[bit/8] ^= 1 << (bit % 8) }()
		if got, err := openObject(dk, testBinding, big); err == nil {
			rt.Fatalf("opened object with bit %d flipped: %d bytes", bit, len(got))
		}
		// A range read over the damaged chunk fails too.
		if bit >= StreamHeaderSize*8 {
			chunk := int64(bit/8-StreamHeaderSize) / encChunkSize
			if _, err := readRange(dk, testBinding, big, chunk*ChunkSize, 1); err == nil {
				rt.Fatalf("range read of chunk %d with bit %d flipped succeeded", chunk, bit)
			}
		}
	})
}

// TestStreamNoPlaintextBeforeVerification checks that a reader returns no
// byte of a chunk whose tag is damaged.
func TestStreamNoPlaintextBeforeVerification(t *testing.T) {
	dk := MustKey(t)
	pt := pattern(ChunkSize + 10)
	sealed := MustSealObject(t, dk, testBinding, pt)
	sealed[len(sealed)-1] ^= 1 // damage the final (second) chunk's tag
	r, err := NewReader(bytes.NewReader(sealed), dk, testBinding)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("ReadAll = %v, want ErrAuth", err)
	}
	if !bytes.Equal(got, pt[:ChunkSize]) {
		t.Errorf("read %d bytes before the error, want exactly the verified first chunk (%d)", len(got), ChunkSize)
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrAuth) {
		t.Errorf("Read after error = %v, want the same error again", err)
	}
}

func readRange(dk []byte, b Binding, sealed []byte, off, n int64) ([]byte, error) {
	r, err := NewRangeReader(bytes.NewReader(sealed), int64(len(sealed)), dk, b, off, n)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n += int64(n)
	return n, err
}

func TestRangeReader(t *testing.T) {
	dk := MustKey(t)
	sealedBySize := map[int][]byte{}
	for _, size := range streamSizes {
		sealedBySize[size] = MustSealObject(t, dk, testBinding, pattern(size))
	}
	rapid.Check(t, func(t *rapid.T) {
		size := rapid.SampledFrom(streamSizes).Draw(t, "size")
		sealed := sealedBySize[size]
		pt := pattern(size)
		off := rapid.IntRange(0, size).Draw(t, "off")
		n := rapid.OneOf(
			rapid.IntRange(0, 3*ChunkSize),
			rapid.IntRange(0, 2),
			rapid.Just(size-off),
			rapid.Just(size+10),
		).Draw(t, "n")
		src := &countingReaderAt{r: bytes.NewReader(sealed)}
		r, err := NewRangeReader(src, int64(len(sealed)), dk, testBinding, int64(off), int64(n))
		if err != nil {
			t.Fatalf("NewRangeReader(size %d, off %d, n %d) = %v", size, off, n, err)
		}
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("range read (size %d, off %d, n %d) = %v", size, off, n, err)
		}
		if want := pt[off : off+min(n, size-off)]; !bytes.Equal(got, want) {
			t.Fatalf("range (size %d, off %d, n %d) returned %d bytes, want %d equal to the plaintext slice", size, off, n, len(got), len(want))
		}
		// Only the covering chunks (at least one) and the header are read.
		end := off + min(n, size-off)
		covering := int64(max(1, (end+ChunkSize-1)/ChunkSize-off/ChunkSize))
		if max := StreamHeaderSize + covering*encChunkSize; src.n > max {
			t.Fatalf("range (size %d, off %d, n %d) read %d sealed bytes, want at most %d", size, off, n, src.n, max)
		}
	})
}

func TestRangeReaderFails(t *testing.T) {
	dk := MustKey(t)
	pt := pattern(3*ChunkSize + 1000)
	sealed := MustSealObject(t, dk, testBinding, pt)
	hdr, cs := chunks(sealed)
	b2 := testBinding
	b2.Version++

	tests := []struct {
		name       string
		src        []byte
		sealedSize int64
		b          Binding
		off, n     int64
		want       error
	}{
		{"dropped_final_chunk_at_end", join(hdr, cs[:3]...), 0, testBinding, 2 * ChunkSize, ChunkSize, ErrAuth},
		{"dropped_final_chunk_whole_range", join(hdr, cs[:3]...), 0, testBinding, 0, 1 << 30, ErrAuth},
		{"size_claims_less_than_stored", sealed, int64(len(sealed)) - 100, testBinding, 3 * ChunkSize, 10, ErrAuth},
		{"size_claims_more_than_stored", sealed, int64(len(sealed)) + 100, testBinding, 3 * ChunkSize, 10, io.ErrUnexpectedEOF},
		{"swapped_chunks", join(hdr, cs[1], cs[0], cs[2], cs[3]), 0, testBinding, 0, 10, ErrAuth},
		{"wrong_binding", sealed, 0, b2, ChunkSize, 10, ErrAuth},
		{"wrong_binding_empty_range", sealed, 0, b2, 100, 0, ErrAuth},
		{"wrong_binding_empty_range_at_end", sealed, 0, b2, int64(len(pt)), 0, ErrAuth},
		{"bad_header", append([]byte{1}, sealed[1:]...), 0, testBinding, 0, 10, ErrMalformed},
		{"invalid_sealed_size", sealed, StreamHeaderSize + 3, testBinding, 0, 10, ErrMalformed},
		{"negative_off", sealed, 0, testBinding, -1, 10, nil},
		{"negative_n", sealed, 0, testBinding, 0, -1, nil},
		{"off_past_end", sealed, 0, testBinding, int64(len(pt)) + 1, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name+"_fails", func(t *testing.T) {
			size := tt.sealedSize
			if size == 0 {
				size = int64(len(tt.src))
			}
			r, err := NewRangeReader(bytes.NewReader(tt.src), size, dk, tt.b, tt.off, tt.n)
			if err == nil {
				_, err = io.ReadAll(r)
			}
			if err == nil {
				t.Fatal("range read succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("range read = %v, want %v", err, tt.want)
			}
		})
	}
	// Documented limit: a range that does not reach a damaged chunk succeeds.
	damaged := join(hdr, cs[0], cs[1], cs[2][:10], cs[3])
	if got, err := readRange(dk, testBinding, damaged, 0, ChunkSize); err == nil {
		t.Logf("range before a damaged chunk reads fine (%d bytes), as documented", len(got))
	} else {
		t.Errorf("range before a damaged chunk = %v, want success", err)
	}
}

func TestWriterErrors(t *testing.T) {
	dk := MustKey(t)
	if _, err := NewWriter(nil, io.Discard, dk[:31], 0, testBinding); err == nil {
		t.Error("NewWriter(31-byte key) succeeded")
	}
	if _, err := NewWriter(strings.NewReader("x"), io.Discard, dk, 0, testBinding); err == nil {
		t.Error("NewWriter(short rand) succeeded")
	}
	boom := errors.New("disk full")
	if _, err := NewWriter(nil, &failingWriter{after: 0, err: boom}, dk, 0, testBinding); !errors.Is(err, boom) {
		t.Errorf("NewWriter(failing dst) = %v, want %v", err, boom)
	}
	w, err := NewWriter(nil, &failingWriter{after: 1, err: boom}, dk, 0, testBinding)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, ChunkSize+1)); !errors.Is(err, boom) {
		t.Errorf("Write to failing dst = %v, want %v", err, boom)
	}
	if _, err := w.Write([]byte{1}); !errors.Is(err, boom) {
		t.Errorf("Write after failure = %v, want %v", err, boom)
	}
	if err := w.Close(); !errors.Is(err, boom) {
		t.Errorf("Close after failure = %v, want %v", err, boom)
	}
	w, _ = NewWriter(nil, io.Discard, dk, 0, testBinding)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	if _, err := w.Write([]byte{1}); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// failingWriter accepts its first after writes, then fails with err.
type failingWriter struct {
	after int
	err   error
}

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, f.err
	}
	f.after--
	return len(p), nil
}

func TestReaderSourceError(t *testing.T) {
	dk := MustKey(t)
	sealed := MustSealObject(t, dk, testBinding, pattern(3*ChunkSize))
	boom := errors.New("network down")
	src := io.MultiReader(bytes.NewReader(sealed[:StreamHeaderSize+encChunkSize+100]), iotest.ErrReader(boom))
	r, err := NewReader(src, dk, testBinding)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, boom) {
		t.Errorf("ReadAll = %v, want %v", err, boom)
	}
}

// TestStreamMemoryIsOneChunk seals and opens a 32 MiB object through a pipe
// and checks that allocation stays near one chunk per side, not the size.
func TestStreamMemoryIsOneChunk(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates and encrypts 32 MiB")
	}
	const size = 32 << 20
	dk := MustKey(t)
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	go func() {
		w, err := NewWriter(nil, pw, dk, 0, testBinding)
		if err == nil {
			_, err = io.CopyN(w, zeros{}, size)
		}
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
		errc <- err
	}()
	r, err := NewReader(pr, dk, testBinding)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != size {
		t.Fatalf("copied %d, %v; want %d", n, err, size)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*ChunkSize {
		t.Errorf("allocated %d bytes for a %d-byte object, want at most %d", alloc, size, 16*ChunkSize)
	}
}

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
