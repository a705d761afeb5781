package httpapi

import (
	"net/http"

	"domicile"
	"domicile/cell"
	"domicile/figures"
	"domicile/rights"
)

// ConsolePagePath is where the console is served.
const ConsolePagePath = "/console/"

// consoleRoutes installs the routes only the console needs: the data map
// (each cell's census) and the open rights requests of every cell. The
// console reads everything else from the routes that the reports use.
func (s *Server) consoleRoutes() {
	s.handleFunc("GET /v1/census", s.auth(s.census))
	s.handleFunc("GET /v1/requests/open", s.auth(s.openRequests))
}

func requireAdminOrAuditor(a domicile.Actor, what string) error {
	return requireRole(a, what, domicile.RoleAdmin, domicile.RoleAuditor)
}

// census answers the data map (figures.MapOf) of the deployment's cells:
// a cell that this process does not serve, or whose store does not
// count, is on the map uncounted, with the reason.
func (s *Server) census(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireAdminOrAuditor(a, "the data map"); err != nil {
		return err
	}
	dep := s.router.Deployment()
	counts := map[string]figures.CellCount{}
	for _, cc := range dep.Cells {
		if err := s.router.Serves(cc.ID); err != nil {
			counts[cc.ID] = figures.CellCount{Reason: err.Error()}
			continue
		}
		n, ok, err := s.router.CellByID(cc.ID).Census(r.Context())
		switch {
		case err != nil:
			return err
		case !ok:
			counts[cc.ID] = figures.CellCount{Reason: "the cell's store does not count its holdings"}
		default:
			counts[cc.ID] = figures.CellCount{Census: n}
		}
	}
	writeJSON(w, http.StatusOK, figures.MapOf(dep.Cells, counts))
	return nil
}

// OpenRequestList is the answer to GET /v1/requests/open.
type OpenRequestList struct {
	// Requests are the open requests, by deadline.
	Requests []rights.OpenRequest `json:"requests"`
	// Uncounted names the cells whose open requests are not listed:
	// served by another process, or by a store that does not list them.
	Uncounted []string `json:"uncounted"`
}

// openRequests answers the open rights requests of every cell served
// here (rights.OpenRequests).
func (s *Server) openRequests(w http.ResponseWriter, r *http.Request, a domicile.Actor) error {
	if err := requireAdminOrAuditor(a, "the open rights requests"); err != nil {
		return err
	}
	out := OpenRequestList{Uncounted: []string{}}
	var cells []*cell.Cell
	for _, cc := range s.router.Deployment().Cells {
		if s.router.Serves(cc.ID) != nil {
			out.Uncounted = append(out.Uncounted, cc.ID)
			continue
		}
		cells = append(cells, s.router.CellByID(cc.ID))
	}
	open, uncounted, err := rights.OpenRequests(r.Context(), cells, s.cfg.Now())
	if err != nil {
		return err
	}
	out.Requests = open
	out.Uncounted = append(out.Uncounted, uncounted...)
	writeJSON(w, http.StatusOK, out)
	return nil
}
