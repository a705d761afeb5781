package envelope

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// ChunkSize is the plaintext size of every chunk of a sealed object but the
// last, which holds 1 to ChunkSize bytes (0 only for an empty object).
const ChunkSize = 64 << 10

// StreamHeaderSize is the size in bytes of a sealed object's header: version,
// key generation, salt and chunk size.
const StreamHeaderSize = 1 + 1 + SaltSize + 4

// encChunkSize is the sealed size of a full chunk.
const encChunkSize = ChunkSize + TagSize

// StreamHeader is the cleartext header of a sealed object.
type StreamHeader struct {
	// KeyGen is the generation of the subject's data key that sealed the
	// object, as given to [NewWriter].
	KeyGen uint8
	// Salt is the random salt from which the object's stream key was derived.
	Salt [SaltSize]byte
}

// MarshalBinary returns the StreamHeaderSize-byte encoding of h:
// 0x02 || KeyGen || Salt || uint32be(ChunkSize). It never fails.
func (h StreamHeader) MarshalBinary() ([]byte, error) {
	return h.append(make([]byte, 0, StreamHeaderSize)), nil
}

func (h StreamHeader) append(dst []byte) []byte {
	dst = append(dst, versionStream, h.KeyGen)
	dst = append(dst, h.Salt[:]...)
	return binary.BigEndian.AppendUint32(dst, ChunkSize)
}

// ParseStreamHeader parses the header at the start of b, which must hold at
// least StreamHeaderSize bytes (a caller streaming an object reads that many
// first, to learn which data-key generation to fetch). Only version 0x02 with
// a chunk size of exactly ChunkSize is accepted; anything else yields
// [ErrMalformed]. Nothing is authenticated here.
func ParseStreamHeader(b []byte) (StreamHeader, error) {
	if len(b) < StreamHeaderSize || b[0] != versionStream ||
		binary.BigEndian.Uint32(b[2+SaltSize:StreamHeaderSize]) != ChunkSize {
		return StreamHeader{}, ErrMalformed
	}
	var h StreamHeader
	h.KeyGen = b[1]
	copy(h.Salt[:], b[2:2+SaltSize])
	return h, nil
}

// SealedSize returns the size of the sealed object for a plaintext of
// plaintextSize bytes: the header plus a 16-byte tag per chunk, with one
// (empty) chunk for an empty object. It returns -1 if plaintextSize is
// negative or the sealed size would not fit in an int64.
func SealedSize(plaintextSize int64) int64 {
	if plaintextSize < 0 {
		return -1
	}
	chunks := numChunks(plaintextSize)
	overhead := StreamHeaderSize + chunks*TagSize
	if plaintextSize > math.MaxInt64-overhead {
		return -1
	}
	return plaintextSize + overhead
}

// numChunks returns the number of chunks of a plaintext of n ≥ 0 bytes.
func numChunks(n int64) int64 {
	if n == 0 {
		return 1
	}
	return (n-1)/ChunkSize + 1
}

// PlaintextSize returns the plaintext size of a sealed object of sealedSize
// bytes. It is the inverse of [SealedSize]; a size that SealedSize never
// returns yields [ErrMalformed]. It trusts sealedSize: a truncation to another
// valid size is only caught when the final chunk is authenticated.
func PlaintextSize(sealedSize int64) (int64, error) {
	payload := sealedSize - StreamHeaderSize
	if sealedSize < StreamHeaderSize || payload < TagSize {
		return 0, ErrMalformed
	}
	full, rem := payload/encChunkSize, payload%encChunkSize
	switch {
	case rem == 0:
		return full * ChunkSize, nil
	case rem < TagSize, rem == TagSize && full > 0:
		// Too short for a tag, or an empty final chunk after full ones:
		// the writer never produces either.
		return 0, ErrMalformed
	default:
		return full*ChunkSize + rem - TagSize, nil
	}
}

// chunkNonce returns the 12-byte nonce of chunk i: the 11-byte big-endian
// index followed by the last-chunk flag.
func chunkNonce(nonce *[12]byte, i uint64, last bool) []byte {
	*nonce = [12]byte{}
	binary.BigEndian.PutUint64(nonce[3:11], i)
	if last {
		nonce[11] = 1
	}
	return nonce[:]
}

// streamAD returns the associated data of every chunk of an object: its
// header followed by b.AD().
func streamAD(header []byte, b Binding) []byte {
	return b.appendAD(append(make([]byte, 0, 128), header...))
}

var errWriteAfterClose = errors.New("envelope: write to closed object writer")

// writer seals an object chunk by chunk; see NewWriter.
type writer struct {
	dst    io.Writer
	aead   cipher.AEAD
	ad     []byte
	buf    []byte // pending plaintext, at most ChunkSize; cap encChunkSize
	idx    uint64
	nonce  [12]byte
	err    error // sticky
	closed bool
}

// NewWriter returns a WriteCloser that seals what is written to it as an
// object and writes the sealed object to dst. The header (0x02, keyGen, a salt
// read from rand — crypto/rand.Reader if rand is nil — and the chunk size) is
// written to dst before NewWriter returns. Each chunk is written once the next
// byte after it arrives, since only then is it known not to be the last.
// Close seals and writes the final chunk, which it must: an object whose
// writer was not closed does not open. Close does not close dst.
//
// The stream key is HKDF-SHA256(ikm=dk, salt, info="domicile/object/v1");
// chunk i is sealed with AES-256-GCM under the nonce 11-byte big-endian i ||
// last-flag, with the header followed by b.AD() as associated data. Memory is
// one chunk, whatever the object size. The writer is not safe for concurrent
// use; after an error from dst every call returns that error.
func NewWriter(rand io.Reader, dst io.Writer, dk []byte, keyGen uint8, b Binding) (io.WriteCloser, error) {
	h := StreamHeader{KeyGen: keyGen}
	if err := readSalt(rand, h.Salt[:]); err != nil {
		return nil, err
	}
	aead, err := deriveAEAD(dk, h.Salt[:], infoStream)
	if err != nil {
		return nil, err
	}
	header := h.append(nil)
	if _, err := dst.Write(header); err != nil {
		return nil, fmt.Errorf("envelope: write object header: %w", err)
	}
	return &writer{
		dst:  dst,
		aead: aead,
		ad:   streamAD(header, b),
		buf:  make([]byte, 0, encChunkSize),
	}, nil
}

// Write buffers p, sealing and writing out each full chunk once more data
// follows it.
func (w *writer) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errWriteAfterClose
	}
	if w.err != nil {
		return 0, w.err
	}
	total := 0
	for len(p) > 0 {
		if len(w.buf) == ChunkSize {
			if err := w.flush(false); err != nil {
				return total, err
			}
		}
		n := copy(w.buf[len(w.buf):ChunkSize], p)
		w.buf = w.buf[:len(w.buf)+n]
		p = p[n:]
		total += n
	}
	return total, nil
}

// Close seals and writes the final chunk. Calling Close again returns an error.
func (w *writer) Close() error {
	if w.closed {
		return errWriteAfterClose
	}
	if w.err != nil {
		return w.err
	}
	w.closed = true
	return w.flush(true)
}

func (w *writer) flush(last bool) error {
	sealed := w.aead.Seal(w.buf[:0], chunkNonce(&w.nonce, w.idx, last), w.buf, w.ad)
	if _, err := w.dst.Write(sealed); err != nil {
		w.err = fmt.Errorf("envelope: write object chunk: %w", err)
		return w.err
	}
	w.buf = w.buf[:0]
	w.idx++
	return nil
}

// reader opens an object sequentially; see NewReader.
type reader struct {
	src     io.Reader
	aead    cipher.AEAD
	ad      []byte
	buf     []byte // encChunkSize+1: a chunk and one byte of look-ahead
	look    byte   // look-ahead byte: first byte of the next chunk
	hasLook bool
	out     []byte // verified plaintext not yet returned
	idx     uint64
	nonce   [12]byte
	done    bool  // final chunk verified
	err     error // sticky
}

// NewReader returns a Reader of the plaintext of the sealed object read from
// src, which was sealed with data key dk and binding b. It reads and checks
// the header and authenticates the first chunk before returning, so a wrong
// key, wrong binding or unknown format is reported here.
//
// The reader verifies as it goes: every byte it returns is from a chunk that
// authenticated at its position. It returns io.EOF only after the final chunk
// (flagged as final by the writer) has authenticated and src is exhausted.
// A stream cut short inside a chunk yields io.ErrUnexpectedEOF; one cut at a
// chunk boundary, with reordered, dropped, duplicated or foreign chunks, or
// with trailing data yields [ErrAuth]; errors from src are returned wrapped.
// A caller must therefore treat an object as incomplete until Read returns
// io.EOF, and discard what it has read if Read fails. Memory is one chunk,
// whatever the object size. The Reader is not safe for concurrent use.
//
// To learn which data-key generation to fetch before calling NewReader, read
// the first StreamHeaderSize bytes, call [ParseStreamHeader], and pass
// io.MultiReader(bytes.NewReader(header), src) as src.
func NewReader(src io.Reader, dk []byte, b Binding) (io.Reader, error) {
	header := make([]byte, StreamHeaderSize)
	if _, err := io.ReadFull(src, header); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("envelope: read object header: %w", err)
	}
	h, err := ParseStreamHeader(header)
	if err != nil {
		return nil, err
	}
	aead, err := deriveAEAD(dk, h.Salt[:], infoStream)
	if err != nil {
		return nil, err
	}
	r := &reader{
		src:  src,
		aead: aead,
		ad:   streamAD(header, b),
		buf:  make([]byte, encChunkSize+1),
	}
	if err := r.next(); err != nil {
		return nil, err
	}
	return r, nil
}

// Read returns verified plaintext.
func (r *reader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		if err := r.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// next reads, authenticates and decrypts the next chunk into r.out.
func (r *reader) next() error {
	have := 0
	if r.hasLook {
		r.buf[0] = r.look
		have = 1
	}
	n, err := io.ReadFull(r.src, r.buf[have:])
	n += have
	last := false
	switch {
	case err == nil:
		// A full chunk plus one more byte: not the last chunk.
		r.look, r.hasLook = r.buf[encChunkSize], true
		n = encChunkSize
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		last, r.hasLook = true, false
		if n < TagSize {
			r.err = fmt.Errorf("envelope: object chunk %d: %w", r.idx, io.ErrUnexpectedEOF)
			return r.err
		}
	default:
		r.err = fmt.Errorf("envelope: read object chunk %d: %w", r.idx, err)
		return r.err
	}
	pt, err := r.aead.Open(r.buf[:0], chunkNonce(&r.nonce, r.idx, last), r.buf[:n], r.ad)
	if err != nil {
		r.err = fmt.Errorf("%w: object chunk %d", ErrAuth, r.idx)
		return r.err
	}
	if last && len(pt) == 0 && r.idx > 0 {
		// Only an empty object has an empty final chunk.
		r.err = ErrMalformed
		return r.err
	}
	r.out = pt
	r.idx++
	r.done = last
	return nil
}

// rangeReader opens a byte range of an object; see NewRangeReader.
type rangeReader struct {
	src        io.ReaderAt
	aead       cipher.AEAD
	ad         []byte
	sealedSize int64
	lastChunk  int64 // index of the object's final chunk
	next       int64 // next chunk to read
	end        int64 // one past the last chunk to read
	skip       int64 // bytes to drop from the start of the next chunk
	remaining  int64 // plaintext bytes still to return
	buf        []byte
	out        []byte
	nonce      [12]byte
	err        error // sticky
}

// NewRangeReader returns a Reader of plaintext bytes [off, off+n) of the
// sealed object of sealedSize bytes in src, sealed with data key dk and
// binding b. n is cut to end at the end of the object; off beyond the end, or
// a negative off or n, is an error. It reads the header and decrypts only the
// chunks covering the range (one chunk, to check the key and binding, when n
// is 0), authenticating the first before returning. Where the range reaches
// the end of the object, the final chunk is authenticated as final, so a
// sealedSize that does not match what was written fails with [ErrAuth] (or
// io.ErrUnexpectedEOF if src is shorter than sealedSize). Chunks outside the
// range are not read, so damage to them goes unnoticed by this reader.
// Memory is one chunk, whatever the range. The Reader is not safe for
// concurrent use; src must allow concurrent ReadAt calls only if the caller
// shares it.
func NewRangeReader(src io.ReaderAt, sealedSize int64, dk []byte, b Binding, off, n int64) (io.Reader, error) {
	size, err := PlaintextSize(sealedSize)
	if err != nil {
		return nil, err
	}
	if off < 0 || n < 0 || off > size {
		return nil, fmt.Errorf("envelope: range [%d, +%d) outside object of %d bytes", off, n, size)
	}
	n = min(n, size-off)
	header := make([]byte, StreamHeaderSize)
	if err := readFullAt(src, header, 0); err != nil {
		return nil, fmt.Errorf("envelope: read object header: %w", err)
	}
	h, err := ParseStreamHeader(header)
	if err != nil {
		return nil, err
	}
	aead, err := deriveAEAD(dk, h.Salt[:], infoStream)
	if err != nil {
		return nil, err
	}
	r := &rangeReader{
		src:        src,
		aead:       aead,
		ad:         streamAD(header, b),
		sealedSize: sealedSize,
		lastChunk:  numChunks(size) - 1,
		remaining:  n,
		buf:        make([]byte, encChunkSize),
	}
	if n == 0 {
		r.next = min(off/ChunkSize, r.lastChunk)
		r.end = r.next + 1
	} else {
		r.next = off / ChunkSize
		r.end = (off+n-1)/ChunkSize + 1
		r.skip = off % ChunkSize
	}
	if err := r.readChunk(); err != nil {
		return nil, err
	}
	return r, nil
}

// readFullAt reads len(p) bytes at off, reporting a short read as
// io.ErrUnexpectedEOF.
func readFullAt(src io.ReaderAt, p []byte, off int64) error {
	n, err := src.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Read returns verified plaintext of the range.
func (r *rangeReader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.next >= r.end || r.remaining == 0 {
			return 0, io.EOF
		}
		if err := r.readChunk(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}

// readChunk authenticates chunk r.next and sets r.out to its part of the range.
func (r *rangeReader) readChunk() error {
	i := r.next
	start := StreamHeaderSize + i*encChunkSize
	length := min(encChunkSize, r.sealedSize-start)
	chunk := r.buf[:length]
	if err := readFullAt(r.src, chunk, start); err != nil {
		r.err = fmt.Errorf("envelope: read object chunk %d: %w", i, err)
		return r.err
	}
	last := i == r.lastChunk
	pt, err := r.aead.Open(chunk[:0], chunkNonce(&r.nonce, uint64(i), last), chunk, r.ad)
	if err != nil {
		r.err = fmt.Errorf("%w: object chunk %d", ErrAuth, i)
		return r.err
	}
	pt = pt[min(r.skip, int64(len(pt))):]
	pt = pt[:min(r.remaining, int64(len(pt)))]
	r.skip = 0
	r.remaining -= int64(len(pt))
	r.out = pt
	r.next++
	return nil
}
