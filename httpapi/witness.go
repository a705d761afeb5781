package httpapi

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"domicile"
	"domicile/checkpoint"
	"domicile/witness"
)

// witnessRoutes installs each cell's witness behind the C2SP tlog-witness
// add-checkpoint endpoint, POST /witness/{cell}/add-checkpoint, so a log
// anywhere (another deployment's cell, or this one's) can ask for a
// cosignature. A log that shows two histories is refused with 409 and
// both signed checkpoints in the body.
func (s *Server) witnessRoutes() {
	s.handleFunc("POST /witness/{cell}/add-checkpoint", s.public(s.addCheckpoint))
}

// maxAddCheckpoint bounds an add-checkpoint request.
const maxAddCheckpoint = checkpoint.MaxSignedSize + witness.MaxProofHashes*64 + 64

func (s *Server) addCheckpoint(w http.ResponseWriter, r *http.Request) error {
	wit := s.cfg.Witnesses[r.PathValue("cell")]
	if wit == nil {
		return domicile.Errorf(domicile.ENotFound, "no witness for cell %q", truncate(r.PathValue("cell"), 32))
	}
	return addCheckpoint(w, r, wit, s.log)
}

// addCheckpoint serves one C2SP tlog-witness add-checkpoint request to
// wit. The statuses are the specification's: 404 for an unknown log, 403
// for a checkpoint the log's key did not sign, 400 for an old size beyond
// the checkpoint, 409 with the witness's size (text/x.tlog.size) when the
// old size is not the one it last cosigned, 409 with both signed
// checkpoints for a fork or rollback, 422 for a consistency proof that
// does not verify, and 200 with the cosignature line.
func addCheckpoint(w http.ResponseWriter, r *http.Request, wit *witness.Witness, log *slog.Logger) error {
	body, err := readBody(r, maxAddCheckpoint)
	if err != nil {
		return err
	}
	old, proof, signed, err := parseAddCheckpoint(body)
	if err != nil {
		return err
	}
	origin, _, _ := strings.Cut(string(signed), "\n")
	line, err := wit.AddCheckpoint(r.Context(), old, proof, signed)
	var (
		conflict *witness.ConflictError
		fork     *witness.ForkError
		rollback *witness.RollbackError
		perr     *witness.ProofError
		serr     *checkpoint.SignatureError
	)
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(line)
	case errors.As(err, &conflict):
		// tlog-witness: 409 with the size the witness has, so the log
		// can send a proof from there.
		w.Header().Set("Content-Type", witnessSizeType)
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, strconv.FormatInt(conflict.Size, 10)+"\n")
	case errors.As(err, &fork), errors.As(err, &rollback):
		log.ErrorContext(r.Context(), "witness caught a log showing two histories", slog.String("log", truncate(origin, 128)), slog.String("evidence", err.Error()))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, err.Error())
	case errors.As(err, &perr):
		// The checkpoint is signed by the log: keep the request, it may
		// be evidence of misbehaviour (tlog-witness allows logging it).
		log.WarnContext(r.Context(), "witness refused a consistency proof", slog.String("log", truncate(origin, 128)), slog.String("evidence", err.Error()))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, err.Error())
	case errors.Is(err, witness.ErrUnknownLog):
		return domicile.Errorf(domicile.ENotFound, "this witness does not cosign log %q", truncate(origin, 64))
	case errors.As(err, &serr):
		return domicile.Errorf(domicile.EForbidden, "the checkpoint's signature does not verify with the log's key")
	case errors.Is(err, witness.ErrOldSize):
		return &domicile.Error{Code: domicile.EInvalid, Field: "old", Message: "the old size is larger than the checkpoint's size"}
	case errors.Is(err, witness.ErrMalformed):
		return &domicile.Error{Code: domicile.EInvalid, Field: "checkpoint", Message: "not a signed checkpoint, or over its size limit"}
	default:
		return err
	}
	return nil
}

// witnessSizeType is the media type of a tlog-witness 409 answer that
// carries the witness's tree size.
const witnessSizeType = "text/x.tlog.size"

// parseAddCheckpoint reads a tlog-witness add-checkpoint body: "old N",
// the consistency proof hashes in base64 one per line, a blank line, and
// the signed checkpoint. Every line ends in a newline; only the canonical
// encoding is accepted (no leading zeroes, padded standard base64 of 32
// bytes), so formatAddCheckpoint reproduces an accepted body exactly.
func parseAddCheckpoint(b []byte) (old int64, proof [][]byte, signed []byte, err error) {
	bad := func(field, m string) error {
		return &domicile.Error{Code: domicile.EInvalid, Field: field, Message: "malformed add-checkpoint request: " + m}
	}
	i := bytes.Index(b, []byte("\n\n"))
	if i < 0 {
		return 0, nil, nil, bad("checkpoint", "no blank line before the checkpoint")
	}
	head, signed := b[:i], b[i+2:]
	if len(signed) == 0 {
		return 0, nil, nil, bad("checkpoint", "no checkpoint after the blank line")
	}
	lines := bytes.Split(head, []byte("\n"))
	n, ok := bytes.CutPrefix(lines[0], []byte("old "))
	old, perr := strconv.ParseInt(string(n), 10, 64)
	if !ok || perr != nil || old < 0 || strconv.FormatInt(old, 10) != string(n) {
		return 0, nil, nil, bad("old", "the first line must be \"old <size>\", the size in decimal without leading zeroes")
	}
	if len(lines)-1 > witness.MaxProofHashes {
		return 0, nil, nil, bad("proof", "more than "+strconv.Itoa(witness.MaxProofHashes)+" proof hashes")
	}
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.DecodeString(string(l))
		if err != nil || len(h) != 32 || base64.StdEncoding.EncodeToString(h) != string(l) {
			return 0, nil, nil, bad("proof", "proof lines must be base64 SHA-256 hashes")
		}
		proof = append(proof, h)
	}
	return old, proof, signed, nil
}

// formatAddCheckpoint is the body of an add-checkpoint request.
func formatAddCheckpoint(old int64, proof [][]byte, signed []byte) []byte {
	b := make([]byte, 0, 32+len(proof)*45+len(signed))
	b = append(b, "old "...)
	b = strconv.AppendInt(b, old, 10)
	b = append(b, '\n')
	for _, h := range proof {
		b = base64.StdEncoding.AppendEncode(b, h)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, signed...)
}
