package envelope_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"strings"

	"domicile/envelope"
)

func ExampleSealRecord() {
	dk := make([]byte, envelope.KeySize) // in domicile: unwrapped from custody
	if _, err := rand.Read(dk); err != nil {
		log.Fatal(err)
	}
	b := envelope.Binding{Cell: "cn-gz1", Subject: "u-42", Kind: "profile", ID: "p1", Version: 1}

	sealed, err := envelope.SealRecord(nil, dk, 1, b, []byte(`{"name":"Li Lei"}`))
	if err != nil {
		log.Fatal(err)
	}
	gen, _ := envelope.RecordKeyGen(sealed) // which DK generation to fetch
	fmt.Println("key generation:", gen, "overhead:", len(sealed)-len(`{"name":"Li Lei"}`))

	pt, err := envelope.OpenRecord(dk, b, sealed)
	fmt.Println(string(pt), err)

	b.Version = 2 // the same ciphertext presented as another version
	_, err = envelope.OpenRecord(dk, b, sealed)
	fmt.Println(err)
	// Output:
	// key generation: 1 overhead: 50
	// {"name":"Li Lei"} <nil>
	// envelope: message authentication failed
}

func ExampleNewWriter() {
	dk := make([]byte, envelope.KeySize)
	if _, err := rand.Read(dk); err != nil {
		log.Fatal(err)
	}
	b := envelope.Binding{Cell: "eu-fra1", Subject: "u-7", Kind: "photo", ID: "img-9", Version: 1}
	photo := strings.Repeat("pixels", 50_000) // 300 000 bytes: five chunks

	var stored bytes.Buffer // in domicile: an object store upload
	w, err := envelope.NewWriter(nil, &stored, dk, 1, b)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := io.Copy(w, strings.NewReader(photo)); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil { // writes the final chunk
		log.Fatal(err)
	}
	fmt.Println(int64(stored.Len()) == envelope.SealedSize(int64(len(photo))))

	// Read bytes [131070, 131076): they straddle chunks 1 and 2.
	r, err := envelope.NewRangeReader(bytes.NewReader(stored.Bytes()), int64(stored.Len()), dk, b, 131070, 6)
	if err != nil {
		log.Fatal(err)
	}
	part, _ := io.ReadAll(r)
	fmt.Printf("%q\n", part)

	// Read it all back, verifying every chunk.
	r, err = envelope.NewReader(&stored, dk, b)
	if err != nil {
		log.Fatal(err)
	}
	all, err := io.ReadAll(r)
	fmt.Println(len(all), err)
	// Output:
	// true
	// "pixels"
	// 300000 <nil>
}
