package emulator

import (
	"encoding/json"
	"io"
	"net/http"
)

// The admin routes live under /_emulator/, a prefix no Entra or Power BI
// path uses. They need no authentication: the emulator is a local tool.

// handleListTokens is GET /_emulator/tokens: every minted token, oldest
// first.
func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"value": s.tokens.all()})
}

// handleGetToken is GET /_emulator/tokens/{id}.
func (s *Server) handleGetToken(w http.ResponseWriter, r *http.Request) {
	info, ok := s.tokens.byID(r.PathValue("id"))
	if !ok {
		writePBIError(w, http.StatusNotFound, "TokenNotFound", "No embed token with this tokenId was minted by this emulator.")
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// handleLookupToken is POST /_emulator/tokens/lookup with {"token":"..."}.
func (s *Server) handleLookupToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes)).Decode(&body); err != nil || body.Token == "" {
		writePBIError(w, http.StatusBadRequest, "InvalidRequest", `Send {"token":"<embed token>"}.`)
		return
	}
	info, ok := s.tokens.byValue(body.Token)
	if !ok {
		writePBIError(w, http.StatusNotFound, "TokenNotFound", "This embed token was not minted by this emulator.")
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// handleGetFaults is GET /_emulator/faults.
func (s *Server) handleGetFaults(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

// handlePutFaults is PUT /_emulator/faults: replaces every fault (absent
// keys become zero) and answers with the new faults.
func (s *Server) handlePutFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes)).Decode(&f); err != nil {
		writePBIError(w, http.StatusBadRequest, "InvalidRequest", "faults: "+err.Error())
		return
	}
	if err := f.Validate(); err != nil {
		writePBIError(w, http.StatusBadRequest, "InvalidRequest", "faults: "+err.Error())
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, f)
}

// handleGetCounters is GET /_emulator/counters.
func (s *Server) handleGetCounters(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Counters())
}

// handleResetCounters is POST /_emulator/counters/reset.
func (s *Server) handleResetCounters(w http.ResponseWriter, r *http.Request) {
	s.ResetCounters()
	w.WriteHeader(http.StatusNoContent)
}

// handleCAPEM is GET /_emulator/ca.pem (for clients that fetched it once
// with the CA file, or curl -k while bootstrapping).
func (s *Server) handleCAPEM(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(s.ca.certPEM)
}
