package emulator

import (
	"fmt"
	"net/http"
	"strconv"
)

// Groups - Get Groups and Groups - Get Group
// (learn.microsoft.com/rest/api/power-bi/groups/get-groups, .../get-group):
// the workspaces the caller has a role in, and whether each is on a
// dedicated capacity.

// emulatorCapacityID is the one dedicated capacity the emulator runs: every
// dedicated workspace is assigned to it.
const emulatorCapacityID = "ca9ac170-0000-4000-8000-000000000001"

// groupJSON is the Group wire object (without @odata.context). Shared
// workspaces have no capacityId and no defaultDatasetStorageFormat ("Returned
// only when isOnDedicatedCapacity is true").
func groupJSON(ws *Workspace) map[string]any {
	m := map[string]any{
		"id":                    ws.ID,
		"name":                  ws.Name,
		"isReadOnly":            false,
		"isOnDedicatedCapacity": !ws.shared(),
		"type":                  "Workspace", // [obs] in live answers, not in the spec
	}
	if !ws.shared() {
		m["capacityId"] = emulatorCapacityID
		m["defaultDatasetStorageFormat"] = "Small"
	}
	return m
}

// handleGetGroups is GET /v1.0/myorg/groups[?$filter=&$top=&$skip=]:
// filter, then skip, then top, in fixture order.
func (s *Server) handleGetGroups(w http.ResponseWriter, r *http.Request) {
	c, apiErr := s.authenticate(r)
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	q := r.URL.Query()
	keep, err := parseFilter(q.Get("$filter"))
	if err != nil {
		// [unk] status, code and message of a filter Power BI cannot read.
		invalidRequest("Invalid $filter: " + err.Error()).write(w)
		return
	}
	skip, apiErr := queryCount(q.Get("$skip"), "$skip")
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	top, apiErr := queryCount(q.Get("$top"), "$top")
	if apiErr != nil {
		apiErr.write(w)
		return
	}
	value := []any{}
	for _, ws := range s.world.ordered {
		if s.world.roleIn(ws, c) == "" {
			continue
		}
		if g := groupJSON(ws); keep(g) {
			value = append(value, g)
		}
	}
	value = value[min(skip, len(value)):]
	if top >= 0 {
		value = value[:min(top, len(value))]
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.context": odataBase + "/$metadata#groups",
		"value":          value,
	})
}

// queryCount reads $top or $skip: absent is -1 for $top (no limit) and 0
// for $skip; a negative or non-integer value is 400 [unk].
func queryCount(v, name string) (int, *apiError) {
	if v == "" {
		if name == "$top" {
			return -1, nil
		}
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, invalidRequest(fmt.Sprintf("%s must be a non-negative integer.", name))
	}
	return n, nil
}

// handleGetGroup is GET /v1.0/myorg/groups/{group}.
func (s *Server) handleGetGroup(w http.ResponseWriter, r *http.Request) {
	_, ws, ok := s.powerBIPrelude(w, r)
	if !ok {
		return
	}
	m := groupJSON(ws)
	m["@odata.context"] = odataBase + "/$metadata#groups/$entity"
	writeJSON(w, http.StatusOK, m)
}
