package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"domicile"
	"domicile/cell"
)

// maxJSONBody bounds JSON request bodies other than records.
const maxJSONBody = 64 << 10

// decodeJSON reads a JSON object body strictly: the right Content-Type,
// within limit, valid UTF-8, no key twice in an object, no unknown
// fields, nothing after it.
func decodeJSON(r *http.Request, limit int64, v any) error {
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := readBody(r, limit)
	if err != nil {
		return err
	}
	if err := checkJSON(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return domicile.Errorf(domicile.EInvalid, "malformed JSON: data after the object")
	}
	return nil
}

func jsonError(err error) error {
	var ute *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &ute):
		return domicile.FieldErrorf(ute.Field, "has the wrong type: want %s", ute.Type)
	case errors.As(err, &se):
		return domicile.Errorf(domicile.EInvalid, "malformed JSON at byte %d: %v", se.Offset, se)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return domicile.FieldErrorf(f, "unknown field")
	case errors.Is(err, io.EOF):
		return domicile.Errorf(domicile.EInvalid, "empty body: want a JSON object")
	}
	return domicile.Errorf(domicile.EInvalid, "malformed JSON: %v", err)
}

func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return domicile.Errorf(domicile.EUnsupported, "Content-Type must be application/json, not %q", truncate(ct, 64))
	}
	return nil
}

func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, domicile.Errorf(domicile.ETooLarge, "request body is %d bytes, over the limit of %d", r.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if isTimeout(err) {
		return nil, domicile.Errorf(domicile.ETimeout, "the request body did not arrive in time")
	}
	if err != nil {
		return nil, domicile.Errorf(domicile.EInvalid, "reading body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, domicile.Errorf(domicile.ETooLarge, "request body is over the limit of %d bytes", limit)
	}
	return b, nil
}

// cellView is a cell as GET /v1/cells shows it: no personal data.
type cellView struct {
	ID           string                `json:"id"`
	Jurisdiction domicile.Jurisdiction `json:"jurisdiction"`
	Operator     string                `json:"operator"`
	Location     string                `json:"location"`
	Custody      string                `json:"key_custody"`
	Log          *LogInfo              `json:"log,omitempty"`
}

// LogInfo is where a cell's log can be verified from.
type LogInfo struct {
	Origin      string `json:"origin"`
	VerifierKey string `json:"verifier_key"`
	URL         string `json:"url"`
	// WitnessKey is the cosignature verifier key of this cell's witness,
	// which cosigns the other cells' logs.
	WitnessKey string `json:"witness_key,omitempty"`
}

func (s *Server) cells(w http.ResponseWriter, r *http.Request) error {
	dep := s.router.Deployment()
	out := struct {
		Deployment string                `json:"deployment"`
		Cells      []cellView            `json:"cells"`
		Policy     []domicile.PolicyRule `json:"policy"`
	}{Deployment: dep.Name, Policy: dep.Policy}
	for _, c := range dep.Cells {
		v := cellView{ID: c.ID, Jurisdiction: c.Jurisdiction, Operator: c.Operator, Location: c.Location, Custody: c.Custody.Kind}
		v.Log = s.logInfo(c.ID)
		out.Cells = append(out.Cells, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) createSubject(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	var req struct {
		ID           string `json:"id"`
		Jurisdiction string `json:"jurisdiction"`
		Cell         string `json:"cell"`
	}
	if err := decodeJSON(r, maxJSONBody, &req); err != nil {
		return err
	}
	if err := domicile.ValidateID("id", req.ID); err != nil {
		return err
	}
	j, err := domicile.ParseJurisdiction(req.Jurisdiction)
	if err != nil {
		return &domicile.Error{Code: domicile.EInvalid, Field: "jurisdiction", Message: err.(*domicile.Error).Message}
	}
	sub, err := s.router.Register(r.Context(), a, req.ID, j, req.Cell)
	if err != nil {
		return err
	}
	setCell(w, sub.Cell)
	w.Header().Set("Location", "/v1/subjects/"+pathEscape(sub.ID))
	writeJSON(w, http.StatusCreated, sub)
	return nil
}

func (s *Server) getSubject(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	c, k, err := s.router.LocateFor(r.Context(), a, r.PathValue("id"), domicile.ActRead)
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	sub, err := c.GetSubject(r.Context(), a, k)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sub)
	return nil
}

func (s *Server) eraseSubject(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	rec, err := s.router.Erase(r.Context(), a, r.PathValue("id"))
	if rec != nil {
		// The subject's tokens are revoked in the control store; drop
		// every cached token so that none of them is honoured again.
		s.tokens.drop()
	}
	if err != nil {
		return err
	}
	setCell(w, rec.Cell)
	writeJSON(w, http.StatusOK, rec)
	return nil
}

func (s *Server) putRecord(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	kind := r.PathValue("kind")
	rid, err := NormalizeID("recordID", r.PathValue("rid"))
	if err != nil {
		return err
	}
	expect, err := writeExpectation(r, false)
	if err != nil {
		return err
	}
	if err := requireJSON(r); err != nil {
		return err
	}
	body, err := readBody(r, domicile.MaxRecordBytes)
	if err != nil {
		return err
	}
	if err := checkRecordBody(body); err != nil {
		return err
	}
	c, k, err := s.router.LocateFor(r.Context(), a, r.PathValue("id"), domicile.ActWrite)
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	rec, err := c.PutRecord(r.Context(), a, k, kind, rid, body, expect)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", rec.ETag())
	status := http.StatusOK
	if rec.Version == 1 {
		status = http.StatusCreated
	}
	writeJSON(w, status, rec)
	return nil
}

// checkRecordBody refuses a record body that is not valid JSON (with
// the decoder's error, which names the byte) or that checkJSON refuses.
// One pass (cleanJSON) checks the syntax and vouches for almost every
// body; checkJSON's walk names what is wrong with the rest.
func checkRecordBody(body []byte) error {
	valid, clean := cleanJSON(body)
	if !valid {
		var v any
		return jsonError(json.Unmarshal(body, &v))
	}
	if clean {
		return nil
	}
	return walkJSON(body)
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	rid, err := NormalizeID("recordID", r.PathValue("rid"))
	if err != nil {
		return err
	}
	c, k, err := s.router.LocateFor(r.Context(), a, r.PathValue("id"), domicile.ActRead)
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	rec, err := c.GetRecord(r.Context(), a, k, r.PathValue("kind"), rid)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", rec.ETag())
	if st := readPrecondition(r, rec.ETag()); st != 0 {
		return writeCondition(w, st)
	}
	if len(rec.Withheld) > 0 {
		// Fields outside the purpose or the mechanism's scope: the body
		// names them too ("withheld").
		w.Header().Set("Domicile-Withheld", strings.Join(rec.Withheld, ","))
	}
	return writeRecord(w, rec)
}

// recordBufs are the buffers records are answered from.
var recordBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeRecord answers a record as writeJSON would, from one buffer,
// without encoding/json's rewriting of its body (Record.AppendJSON).
func writeRecord(w http.ResponseWriter, rec *domicile.Record) error {
	bp := recordBufs.Get().(*[]byte)
	b, err := rec.AppendJSON((*bp)[:0])
	defer func() {
		if cap(b) <= 64<<10 { // keep no large record's buffer
			*bp = b[:0]
			recordBufs.Put(bp)
		}
	}()
	if err != nil {
		return err
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	return nil
}

func (s *Server) deleteRecord(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	rid, err := NormalizeID("recordID", r.PathValue("rid"))
	if err != nil {
		return err
	}
	expect, err := deleteExpectation(r, false)
	if err != nil {
		return err
	}
	c, k, err := s.router.LocateFor(r.Context(), a, r.PathValue("id"), domicile.ActDelete)
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	if err := c.DeleteRecord(r.Context(), a, k, r.PathValue("kind"), rid, expect); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listParams reads limit and cursor.
func listParams(r *http.Request) (limit int, cursor []byte, err error) {
	limit = domicile.DefaultListLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > domicile.MaxListLimit {
			return 0, nil, domicile.FieldErrorf("limit", "must be an integer from 1 to %d", domicile.MaxListLimit)
		}
		limit = n
	}
	if v := r.URL.Query().Get("cursor"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil || len(b) > 2048 {
			return 0, nil, domicile.FieldErrorf("cursor", "is not a cursor this server gave")
		}
		cursor = b
	}
	return limit, cursor, nil
}

func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

type recordCursor struct {
	K string `json:"k"`
	I string `json:"i"`
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	limit, cur, err := listParams(r)
	if err != nil {
		return err
	}
	var rc recordCursor
	if cur != nil {
		if err := json.Unmarshal(cur, &rc); err != nil {
			return domicile.FieldErrorf("cursor", "is not a cursor this server gave")
		}
	}
	c, k, err := s.router.LocateFor(r.Context(), a, r.PathValue("id"), domicile.ActList)
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	recs, next, err := c.ListRecords(r.Context(), a, k, r.URL.Query().Get("kind"), rc.K, rc.I, limit)
	if err != nil {
		return err
	}
	out := struct {
		Records []domicile.Record `json:"records"`
		Next    string            `json:"next,omitempty"`
	}{Records: recs}
	if next != [2]string{} {
		out.Next = encodeCursor(recordCursor{next[0], next[1]})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) putObject(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	name := r.PathValue("name")
	if err := domicile.ValidateObjectName(name); err != nil {
		return err
	}
	expect, err := writeExpectation(r, true)
	if err != nil {
		return err
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return domicile.Errorf(domicile.EUnsupported, "an object needs a Content-Type")
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil || len(ct) > 255 {
		return domicile.Errorf(domicile.EUnsupported, "Content-Type %q is malformed", truncate(ct, 64))
	}
	max := s.router.Deployment().MaxObjectBytes
	if r.ContentLength > max {
		return domicile.Errorf(domicile.ETooLarge, "object is %d bytes, over the limit of %d", r.ContentLength, max)
	}
	c, k, err := s.router.LocateFor(r.Context(), a, r.PathValue("id"), domicile.ActWrite)
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	o, err := c.PutObject(r.Context(), a, k, name, ct, r.Body, max, expect)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", o.ETag())
	status := http.StatusOK
	if o.Version == 1 {
		status = http.StatusCreated
	}
	writeJSON(w, status, o)
	return nil
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	c, k, err := s.router.LocateFor(r.Context(), a, r.PathValue("id"), domicile.ActRead)
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	name := r.PathValue("name")
	if err := domicile.ValidateObjectName(name); err != nil {
		return err
	}
	// The range is resolved inside the cell, after the access is
	// authorized: a refused actor learns nothing, not even the size.
	partial := false
	rangeHeader := r.Header.Get("Range")
	o, off, n, body, err := c.GetObject(r.Context(), a, k, name, func(o *domicile.Object) (int64, int64, error) {
		if !ifRangeHolds(r, o.ETag()) || readPrecondition(r, o.ETag()) != 0 {
			return 0, o.Size, nil
		}
		off, n, ok, err := parseRange(rangeHeader, o.Size)
		partial = ok
		if !ok && err == nil {
			return 0, o.Size, nil
		}
		return off, n, err
	})
	if err != nil {
		if domicile.ErrorCode(err) == cell.ERange && o != nil {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", o.Size))
		}
		return err
	}
	defer body.Close()
	h := w.Header()
	h.Set("ETag", o.ETag())
	h.Set("Cache-Control", "no-store")
	if st := readPrecondition(r, o.ETag()); st != 0 {
		return writeCondition(w, st)
	}
	h.Set("Content-Type", o.ContentType)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Digest-SHA256", o.SHA256)
	s.downloadHeaders(h, name, o.ContentType)
	if partial {
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, o.Size))
		h.Set("Content-Length", strconv.FormatInt(n, 10))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		h.Set("Content-Length", strconv.FormatInt(o.Size, 10))
		w.WriteHeader(http.StatusOK)
	}
	if r.Method == http.MethodHead {
		return nil
	}
	return s.copyBody(w, r, body)
}

func (s *Server) listObjects(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	limit, cur, err := listParams(r)
	if err != nil {
		return err
	}
	c, k, err := s.router.LocateFor(r.Context(), a, r.PathValue("id"), domicile.ActList)
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	objs, err := c.ListObjects(r.Context(), a, k, string(cur), limit)
	if err != nil {
		return err
	}
	out := struct {
		Objects []domicile.Object `json:"objects"`
		Next    string            `json:"next,omitempty"`
	}{Objects: objs}
	if len(objs) == limit {
		out.Next = base64.RawURLEncoding.EncodeToString([]byte(objs[len(objs)-1].Name))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	expect, err := deleteExpectation(r, true)
	if err != nil {
		return err
	}
	c, k, err := s.router.LocateFor(r.Context(), a, r.PathValue("id"), domicile.ActDelete)
	if err != nil {
		return err
	}
	setCell(w, c.ID())
	if err := c.DeleteObject(r.Context(), a, k, r.PathValue("name"), expect); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func pathEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "%", "%25"), "/", "%2F")
}
