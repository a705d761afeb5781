package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"domicile/witness"
)

// WitnessClient submits checkpoints to a C2SP tlog-witness over HTTP: a
// stand-alone witness (`domicile witness serve`), a cell's witness
// (/witness/{cell}/), or any other implementation of the specification.
// Its AddCheckpoint has the signature of tlog.Witness. It is safe for
// concurrent use.
type WitnessClient struct {
	prefix string
	hc     *http.Client
}

// NewWitnessClient returns a client for the witness whose submission
// prefix is prefix (requests go to prefix + "/add-checkpoint"). hc makes
// the requests; nil means a client with a 10 s timeout.
func NewWitnessClient(prefix string, hc *http.Client) (*WitnessClient, error) {
	u, err := url.Parse(prefix)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("httpapi: a witness URL is http:// or https://, with a host and no user, query or fragment")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &WitnessClient{prefix: strings.TrimSuffix(prefix, "/"), hc: hc}, nil
}

// URL returns the add-checkpoint URL.
func (c *WitnessClient) URL() string { return c.prefix + "/add-checkpoint" }

// WitnessRefusedError is a witness's answer other than a cosignature or
// its size: the status and (the start of) the body, which for a fork, a
// rollback or a bad proof is the witness's evidence.
type WitnessRefusedError struct {
	URL    string
	Status int
	Body   string
}

func (e *WitnessRefusedError) Error() string {
	return fmt.Sprintf("witness %s: status %d: %s", e.URL, e.Status, e.Body)
}

// Limits on a witness's answers.
const (
	maxWitnessAnswer     = 16 << 10 // cosignature lines or an error body
	maxCosignatureLines  = 64
	maxWitnessSizeAnswer = 32
)

// AddCheckpoint sends signed, with the consistency proof from old, to the
// witness and returns its cosignature lines ("— <name> <base64>\n", one or
// more, whose signatures the caller must verify). A 409 answer with the
// witness's size is a *witness.ConflictError carrying it; other refusals
// are a *WitnessRefusedError.
func (c *WitnessClient) AddCheckpoint(ctx context.Context, old int64, proof [][]byte, signed []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL(), bytes.NewReader(formatAddCheckpoint(old, proof, signed)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxWitnessAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("witness %s: read answer: %w", c.URL(), err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case resp.StatusCode == http.StatusOK:
		if len(b) > maxWitnessAnswer {
			return nil, fmt.Errorf("witness %s: answer over %d bytes", c.URL(), maxWitnessAnswer)
		}
		if err := parseCosignatureLines(b); err != nil {
			return nil, fmt.Errorf("witness %s: %w", c.URL(), err)
		}
		return b, nil
	case resp.StatusCode == http.StatusConflict && mt == witnessSizeType:
		n, err := parseWitnessSize(b)
		if err != nil {
			return nil, fmt.Errorf("witness %s: %w", c.URL(), err)
		}
		return nil, &witness.ConflictError{Size: n}
	}
	if len(b) > 4096 {
		b = append(b[:4096], "…"...)
	}
	return nil, &WitnessRefusedError{URL: c.URL(), Status: resp.StatusCode, Body: string(b)}
}

// parseCosignatureLines checks that b is one or more note signature
// lines, each "— <name> <base64>" ending in a newline.
func parseCosignatureLines(b []byte) error {
	bad := errors.New("malformed cosignature lines")
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return bad
	}
	lines := bytes.Split(b[:len(b)-1], []byte("\n"))
	if len(lines) > maxCosignatureLines {
		return bad
	}
	for _, l := range lines {
		rest, ok := bytes.CutPrefix(l, []byte("— "))
		name, sig, ok2 := bytes.Cut(rest, []byte(" "))
		if !ok || !ok2 || len(name) == 0 || len(sig) == 0 || bytes.ContainsAny(sig, " \t\r") {
			return bad
		}
	}
	return nil
}

// parseWitnessSize reads the body of a 409 text/x.tlog.size answer: a
// tree size in decimal, without leading zeroes, and a newline.
func parseWitnessSize(b []byte) (int64, error) {
	s, ok := strings.CutSuffix(string(b), "\n")
	n, err := strconv.ParseInt(s, 10, 64)
	if !ok || len(b) > maxWitnessSizeAnswer || err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, errors.New("malformed tree size in a 409 answer")
	}
	return n, nil
}
