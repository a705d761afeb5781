package httpapi

import (
	"domicile/client"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"domicile"
	"domicile/cell"
	"domicile/transfer"
)

// statusOf is the one map from error codes to HTTP statuses.
var statusOf = map[string]int{
	domicile.EInvalid:        http.StatusBadRequest,
	domicile.EUnauthorized:   http.StatusUnauthorized,
	domicile.EForbidden:      http.StatusForbidden,
	domicile.EResidency:      http.StatusForbidden,
	domicile.ENotFound:       http.StatusNotFound,
	domicile.EConflict:       http.StatusConflict,
	domicile.EPrecondition:   http.StatusPreconditionFailed,
	domicile.ETooLarge:       http.StatusRequestEntityTooLarge,
	domicile.EUnsupported:    http.StatusUnsupportedMediaType,
	domicile.ETimeout:        http.StatusRequestTimeout,
	cell.ERange:              http.StatusRequestedRangeNotSatisfiable,
	domicile.EMisdirected:    http.StatusMisdirectedRequest,
	domicile.EUnavailable:    http.StatusServiceUnavailable,
	domicile.ENotImplemented: http.StatusNotImplemented,
	domicile.EInternal:       http.StatusInternalServerError,
	"method-not-allowed":     http.StatusMethodNotAllowed,
}

// writeError answers err as a problem document. Errors that are not
// *domicile.Error are logged once here and shown as "internal error".
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	writeProblem(w, r, err, s.log)
}

// writeProblem is writeError for any handler: the stand-alone witness's
// too. Errors that are not *domicile.Error are logged to log.
func writeProblem(w http.ResponseWriter, r *http.Request, err error, log *slog.Logger) {
	var re *transfer.RefusedError
	if errors.As(err, &re) {
		// A refused transfer carries the gate's decision, so that the
		// business sees which rule refused it.
		p := TransferProblem{Problem: client.Problem{Type: client.ProblemTypePrefix + "transfer-refused", Title: "Forbidden", Status: http.StatusForbidden,
			Detail: re.Error(), Code: "transfer-refused"}, Decision: re.Decision}
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusForbidden)
		json.NewEncoder(w).Encode(p)
		return
	}
	var de *domicile.Error
	if !errors.As(err, &de) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			de = &domicile.Error{Code: domicile.ETooLarge, Message: "request body is over the limit of " + strconv.FormatInt(mbe.Limit, 10) + " bytes"}
		} else if errors.Is(err, domicile.ErrStoreUnavailable) {
			// The store reconnects by itself: a later try may succeed. A
			// write refused so may have been applied: read before writing
			// again.
			log.WarnContext(r.Context(), "store unavailable", slog.String("route", r.Pattern), slog.Any("err", err))
			de = &domicile.Error{Code: domicile.EUnavailable, Message: "the cell's store cannot be reached now; retry later (a write refused so may have taken effect: read before writing again)", RetryAfter: 5}
		} else {
			log.ErrorContext(r.Context(), "internal error", slog.String("route", r.Pattern), slog.Any("err", err))
			de = &domicile.Error{Code: domicile.EInternal, Message: "internal error"}
		}
	}
	status, ok := statusOf[de.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if de.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(de.RetryAfter))
	}
	p := client.Problem{Type: client.ProblemTypePrefix + de.Code, Title: http.StatusText(status), Status: status, Detail: de.Message, Field: de.Field, Code: de.Code}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}
