package law

import (
	"bytes"
	"io"
	"os"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func mustRead(tb testingTB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

type testingTB interface {
	Helper()
	Fatal(args ...any)
}
