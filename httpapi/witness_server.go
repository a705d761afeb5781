package httpapi

import (
	"log/slog"
	"net/http"

	"domicile"
	"domicile/witness"
)

// NewWitnessHandler returns the HTTP interface of a stand-alone witness
// (`domicile witness serve`): C2SP tlog-witness add-checkpoint at
// POST /add-checkpoint, so its submission prefix is the server's root
// URL. Anything else is a 404 problem. Errors that are not the
// specification's answers are problem documents, like the rest of the
// API; internal errors are logged to log.
func NewWitnessHandler(wit *witness.Witness, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", func(w http.ResponseWriter, r *http.Request) {
		if err := addCheckpoint(w, r, wit, log); err != nil {
			writeProblem(w, r, err, log)
		}
	})
	mux.HandleFunc("/add-checkpoint", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeProblem(w, r, domicile.Errorf("method-not-allowed", "add-checkpoint takes POST"), log)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, domicile.Errorf(domicile.ENotFound, "no route %s %s: a witness serves POST /add-checkpoint", r.Method, truncate(r.URL.Path, 128)), log)
	})
	return mux
}
