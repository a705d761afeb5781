package main

import (
	"sync"

	"domicile/httpapi"
	"domicile/law"
)

// lawEngine compiles the embedded rules once per process.
var lawEngine = sync.OnceValues(law.New)

func init() {
	extraRoutes = append(extraRoutes, func(rt *runtime) func(s *httpapi.Server) {
		return func(s *httpapi.Server) {
			e, err := lawEngine()
			if err != nil {
				panic("domicile: embedded rules do not compile: " + err.Error()) // caught by every test run
			}
			s.SetLaw(e)
		}
	})
}
