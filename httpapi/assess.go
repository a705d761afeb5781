package httpapi

import (
	"bytes"
	"errors"
	"net/http"

	"domicile"
	"domicile/law"
)

// SetLaw installs POST /v1/assess: the same inputs as `domicile assess`
// (a fact file or an inventory, YAML or JSON), answered with the JSON
// report. Any authenticated actor may assess; it touches no subject data.
func (s *Server) SetLaw(e *law.Engine) {
	s.HandleFunc("POST /v1/assess", s.auth(func(w http.ResponseWriter, r *http.Request, a domicile.Actor) {
		body, err := readBody(r, law.MaxInputBytes)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		in, err := law.Parse(body)
		if err == nil {
			var rep *law.Report
			rep, err = e.Assess(in, s.cfg.Now())
			if err == nil {
				var buf bytes.Buffer
				if err = rep.Render(&buf, law.FormatJSON); err == nil {
					w.Header().Set("Content-Type", "application/json")
					w.Write(buf.Bytes())
					return
				}
			}
		}
		var ie *law.InputError
		if errors.As(err, &ie) {
			err = &domicile.Error{Code: domicile.EInvalid, Field: ie.Field, Message: ie.Message}
		}
		s.writeError(w, r, err)
	}))
}
