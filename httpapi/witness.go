package httpapi

import (
	"bufio"
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
	body, err := readBody(r, maxAddCheckpoint)
	if err != nil {
		return err
	}
	old, proof, signed, err := parseAddCheckpoint(body)
	if err != nil {
		return err
	}
	origin, _, _ := strings.Cut(string(signed), "\n")
	last, ok, err := wit.LastSize(r.Context(), origin)
	if errors.Is(err, witness.ErrUnknownLog) {
		return domicile.Errorf(domicile.ENotFound, "this witness does not cosign log %q", truncate(origin, 64))
	}
	if err != nil {
		return err
	}
	if !ok {
		last = 0
	}
	if old != last {
		// tlog-witness: 409 with the size the witness has, so the log
		// can send a proof from there.
		w.Header().Set("Content-Type", "text/x.tlog.size")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, strconv.FormatInt(last, 10)+"\n")
		return nil
	}
	line, err := wit.Cosign(r.Context(), signed, proof)
	var fork *witness.ForkError
	var rollback *witness.RollbackError
	var perr *witness.ProofError
	var serr *checkpoint.SignatureError
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(line)
	case errors.As(err, &fork), errors.As(err, &rollback):
		s.log.ErrorContext(r.Context(), "witness caught a log showing two histories", slog.String("log", origin), slog.String("evidence", err.Error()))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, err.Error())
	case errors.As(err, &perr):
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnprocessableEntity)
		io.WriteString(w, err.Error())
	case errors.As(err, &serr):
		return domicile.Errorf(domicile.EForbidden, "the checkpoint's signature does not verify with the log's key")
	default:
		return domicile.Errorf(domicile.EInvalid, "%v", err)
	}
	return nil
}

// parseAddCheckpoint reads a tlog-witness add-checkpoint body: "old N",
// the consistency proof hashes in base64 one per line, a blank line, and
// the signed checkpoint.
func parseAddCheckpoint(b []byte) (old int64, proof [][]byte, signed []byte, err error) {
	bad := func(m string) error {
		return domicile.Errorf(domicile.EInvalid, "malformed add-checkpoint request: %s", m)
	}
	head, rest, found := bytes.Cut(b, []byte("\n\n"))
	if !found {
		return 0, nil, nil, bad("no blank line before the checkpoint")
	}
	sc := bufio.NewScanner(bytes.NewReader(head))
	if !sc.Scan() {
		return 0, nil, nil, bad("no old line")
	}
	n, ok := strings.CutPrefix(sc.Text(), "old ")
	old, perr := strconv.ParseInt(n, 10, 64)
	if !ok || perr != nil || old < 0 || strconv.FormatInt(old, 10) != n {
		return 0, nil, nil, bad("first line must be \"old <size>\"")
	}
	for sc.Scan() {
		h, err := base64.StdEncoding.DecodeString(sc.Text())
		if err != nil || len(h) != 32 {
			return 0, nil, nil, bad("proof lines must be base64 SHA-256 hashes")
		}
		if len(proof) >= witness.MaxProofHashes {
			return 0, nil, nil, bad("proof too long")
		}
		proof = append(proof, h)
	}
	return old, proof, rest, nil
}
