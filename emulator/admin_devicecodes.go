package emulator

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// handleListDeviceCodes is GET /_emulator/devicecodes: the pending device
// codes (user codes only: a device code is the client's credential).
func (s *Server) handleListDeviceCodes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"value": s.PendingDeviceCodes()})
}

// handleApproveDeviceCode is POST /_emulator/devicecodes/{code}/approve
// with {"user":"<UPN or object id>"}.
func (s *Server) handleApproveDeviceCode(w http.ResponseWriter, r *http.Request) {
	var body struct {
		User string `json:"user"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes)).Decode(&body); err != nil || body.User == "" {
		writePBIError(w, http.StatusBadRequest, "InvalidRequest", `Send {"user":"<UPN or object id>"}.`)
		return
	}
	s.deviceCodeReply(w, s.ApproveDeviceCode(r.PathValue("code"), body.User))
}

// handleDeclineDeviceCode is POST /_emulator/devicecodes/{code}/decline.
func (s *Server) handleDeclineDeviceCode(w http.ResponseWriter, r *http.Request) {
	s.deviceCodeReply(w, s.DeclineDeviceCode(r.PathValue("code")))
}

func (s *Server) deviceCodeReply(w http.ResponseWriter, err error) {
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrNoDeviceCode):
		writePBIError(w, http.StatusNotFound, "DeviceCodeNotFound", err.Error())
	default:
		writePBIError(w, http.StatusBadRequest, "InvalidRequest", err.Error())
	}
}
