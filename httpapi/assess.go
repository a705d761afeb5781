package httpapi

import (
	"bytes"
	"errors"
	"net/http"

	"domicile"
	"domicile/law"
)

// assessRoutes installs POST /v1/assess: the same inputs as `domicile assess`
// (a fact file or an inventory, YAML or JSON), answered with the JSON
// report; with a top-level "changes": {"from", "to"} the answer is what
// changes between the two days (a law.ChangeReport). Any authenticated
// actor may assess; it touches no subject data. The engine's rules (the
// embedded ones or a verified bundle) are the ones applied, and every
// answer names their version and digest.
func (s *Server) assessRoutes(e *law.Engine) {
	s.handleFunc("POST /v1/assess", s.auth(func(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
		body, err := readBody(r, law.MaxInputBytes)
		if err != nil {
			return err
		}
		in, err := e.Parse(body)
		if err == nil {
			var buf bytes.Buffer
			if in.Changes != nil {
				var c *law.ChangeReport
				if c, err = e.Changes(in, *in.Changes); err == nil {
					err = c.Render(&buf, law.FormatJSON)
				}
			} else {
				var rep *law.Report
				if rep, err = e.Assess(in, s.cfg.Now()); err == nil {
					err = rep.Render(&buf, law.FormatJSON)
				}
			}
			if err == nil {
				w.Header().Set("Content-Type", "application/json")
				w.Write(buf.Bytes())
				return nil
			}
		}
		var ie *law.InputError
		if errors.As(err, &ie) {
			err = &domicile.Error{Code: domicile.EInvalid, Field: ie.Field, Message: ie.Message}
		}
		return err
	}))
}
