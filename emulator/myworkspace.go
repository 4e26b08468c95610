package emulator

import "net/http"

// My workspace: the routes without a group ("Reports - Get Reports",
// "Reports - Get Report", "Datasets - Get Dataset") reach the signed-in
// user's own content. A service principal has no My workspace: it sees an
// empty list and no items ([unk] what Power BI answers it).

// myWorkspace is the caller's My workspace (nil for none).
func (s *Server) myWorkspace(c *caller) *Workspace {
	if c.user == nil {
		return nil
	}
	return s.world.myWS[c.user]
}

func (s *Server) handleGetMyReports(w http.ResponseWriter, r *http.Request) {
	c, apiErr := s.authenticate(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	value := []any{}
	if ws := s.myWorkspace(c); ws != nil {
		for i := range ws.Reports {
			value = append(value, s.reportJSON(ws, &ws.Reports[i]))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"@odata.context": odataBase + "/$metadata#reports", "value": value})
}

func (s *Server) handleGetMyReport(w http.ResponseWriter, r *http.Request) {
	c, apiErr := s.authenticate(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	ws := s.myWorkspace(c)
	var rep *Report
	if ws != nil {
		rep = s.world.reportIn(ws, r.PathValue("report"))
	}
	if rep == nil {
		errNotFound.write(w)
		return
	}
	m := s.reportJSON(ws, rep)
	m["@odata.context"] = odataBase + "/$metadata#reports/$entity"
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleGetMyDataset(w http.ResponseWriter, r *http.Request) {
	c, apiErr := s.authenticate(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	ws := s.myWorkspace(c)
	var ds *Dataset
	if ws != nil {
		ds = s.world.datasetIn(ws, r.PathValue("dataset"))
	}
	if ds == nil {
		errNotFound.write(w)
		return
	}
	m := s.datasetJSON(ws, ds)
	m["@odata.context"] = odataBase + "/$metadata#datasets/$entity"
	writeJSON(w, http.StatusOK, m)
}
