package checkpoint

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"domicile/merkle"
)

// MaxBodySize bounds the size of a checkpoint body accepted by [Parse].
const MaxBodySize = 1 << 14

// A Checkpoint is the body of a tlog-checkpoint: a log's tree head.
type Checkpoint struct {
	// Origin identifies the log; it is also the name of the log's key.
	Origin string
	// Size is the number of leaves in the tree.
	Size int64
	// Hash is the RFC 6962 root hash of the tree.
	Hash merkle.Hash
	// Extensions are optional extra lines, opaque and each non-empty.
	Extensions []string
}

// validLine reports whether s can be a checkpoint line: non-empty, valid
// UTF-8, no control characters (signed notes forbid them) and no newline.
func validLine(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Validate reports whether c can be formatted.
func (c Checkpoint) Validate() error {
	if !validLine(c.Origin) {
		return errors.New("checkpoint: invalid origin")
	}
	if c.Size < 0 {
		return errors.New("checkpoint: negative size")
	}
	for _, e := range c.Extensions {
		if !validLine(e) {
			return errors.New("checkpoint: invalid extension line")
		}
	}
	return nil
}

// Format returns the checkpoint body of c.
func Format(c Checkpoint) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(c.Origin)+70)
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Hash[:])
	b = append(b, '\n')
	for _, e := range c.Extensions {
		b = append(b, e...)
		b = append(b, '\n')
	}
	if len(b) > MaxBodySize {
		return nil, errors.New("checkpoint: too large")
	}
	return b, nil
}

var errMalformed = errors.New("checkpoint: malformed checkpoint")

// Parse decodes a checkpoint body (the note text, without signatures). It
// accepts only the canonical encoding: Format of the result reproduces text
// byte for byte.
func Parse(text []byte) (Checkpoint, error) {
	if len(text) > MaxBodySize || !bytes.HasSuffix(text, []byte("\n")) {
		return Checkpoint{}, errMalformed
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, errMalformed
	}
	c := Checkpoint{Origin: lines[0]}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return Checkpoint{}, errMalformed
	}
	c.Size = n
	h, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(h) != merkle.HashSize {
		return Checkpoint{}, errMalformed
	}
	copy(c.Hash[:], h)
	if len(lines) > 3 {
		c.Extensions = lines[3:]
	}
	out, err := Format(c)
	if err != nil || !bytes.Equal(out, text) {
		return Checkpoint{}, errMalformed
	}
	return c, nil
}
