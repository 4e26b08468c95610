package emulator

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
)

// The admin routes of the test hooks ([Server.Requests], [Server.SetAnswer],
// [Server.Gate]), for clients that are not written in Go.

// knownRoute resolves the {route} path value, answering 400 for a name
// that is not a Route* constant.
func knownRoute(w http.ResponseWriter, r *http.Request) (string, bool) {
	route := r.PathValue("route")
	if !slices.Contains(allRoutes, route) {
		writePBIError(w, http.StatusBadRequest, "InvalidRequest", "Unknown route "+route+"; see GET /_emulator/counters for the names.")
		return "", false
	}
	return route, true
}

// handleGetRequests is GET /_emulator/requests/{route}.
func (s *Server) handleGetRequests(w http.ResponseWriter, r *http.Request) {
	if route, ok := knownRoute(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]any{"value": s.Requests(route)})
	}
}

// handleResetRequests is POST /_emulator/requests/reset.
func (s *Server) handleResetRequests(w http.ResponseWriter, r *http.Request) {
	s.ResetRequests()
	w.WriteHeader(http.StatusNoContent)
}

// handlePutAnswer is PUT /_emulator/answers/{route}.
func (s *Server) handlePutAnswer(w http.ResponseWriter, r *http.Request) {
	route, ok := knownRoute(w, r)
	if !ok {
		return
	}
	var a Answer
	err := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes)).Decode(&a)
	if err == nil {
		err = a.Validate()
	}
	if err != nil {
		writePBIError(w, http.StatusBadRequest, "InvalidRequest", "answer: "+err.Error())
		return
	}
	s.SetAnswer(route, a)
	w.WriteHeader(http.StatusNoContent)
}

// handleClearAnswers is DELETE /_emulator/answers.
func (s *Server) handleClearAnswers(w http.ResponseWriter, r *http.Request) {
	s.ClearAnswers()
	w.WriteHeader(http.StatusNoContent)
}

// handlePutGate is PUT /_emulator/gates/{route}: close the route's gate.
func (s *Server) handlePutGate(w http.ResponseWriter, r *http.Request) {
	if route, ok := knownRoute(w, r); ok {
		s.Gate(route)
		w.WriteHeader(http.StatusNoContent)
	}
}

// handleGetGate is GET /_emulator/gates/{route}: {"closed":bool,"waiting":n}.
func (s *Server) handleGetGate(w http.ResponseWriter, r *http.Request) {
	route, ok := knownRoute(w, r)
	if !ok {
		return
	}
	waiting := 0
	g, closed := s.gates.lookup(route)
	if closed {
		waiting = g.Waiting()
	}
	writeJSON(w, http.StatusOK, map[string]any{"closed": closed, "waiting": waiting})
}

// handleOpenGate is DELETE /_emulator/gates/{route}: open the gate.
func (s *Server) handleOpenGate(w http.ResponseWriter, r *http.Request) {
	route, ok := knownRoute(w, r)
	if !ok {
		return
	}
	if g, closed := s.gates.lookup(route); closed {
		g.Open()
	}
	w.WriteHeader(http.StatusNoContent)
}
