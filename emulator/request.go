package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Limits the real service enforces.
const (
	maxItems       = 50 // reports, datasets, targetWorkspaces per V2 token
	maxRoles       = 50
	maxRoleLen     = 50
	maxUsernameLen = 256
	maxBodyBytes   = 1 << 20
)

// flexBool accepts true/false and the strings "true"/"false" (a spec
// example sends allowSaveAs as a string).
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	s := strings.Trim(string(data), `"`)
	if s == "null" || s == "" {
		*b = false
		return nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("%s is not a boolean", data)
	}
	*b = flexBool(v)
	return nil
}

// effectiveIdentity is the EffectiveIdentity wire object (V1 and V2).
type effectiveIdentity struct {
	Username         *string         `json:"username"`
	Roles            []string        `json:"roles"`
	Datasets         []string        `json:"datasets"`
	CustomData       *string         `json:"customData"`
	IdentityBlob     json.RawMessage `json:"identityBlob"`
	Reports          []string        `json:"reports"`
	AuditableContext string          `json:"auditableContext"`
}

func (id *effectiveIdentity) hasBlob() bool {
	b := bytes.TrimSpace(id.IdentityBlob)
	return len(b) > 0 && !bytes.Equal(b, []byte("null"))
}

// blobValue is identityBlob.value ("" when absent or not an object with a
// string value).
func (id *effectiveIdentity) blobValue() string {
	var blob struct {
		Value string `json:"value"`
	}
	_ = json.Unmarshal(id.IdentityBlob, &blob)
	return blob.Value
}

// generateTokenV2 is the GenerateTokenRequestV2 wire object.
type generateTokenV2 struct {
	Datasets []struct {
		ID              string `json:"id"`
		XmlaPermissions string `json:"xmlaPermissions"`
	} `json:"datasets"`
	Reports []struct {
		ID        string   `json:"id"`
		AllowEdit flexBool `json:"allowEdit"`
	} `json:"reports"`
	TargetWorkspaces []struct {
		ID string `json:"id"`
	} `json:"targetWorkspaces"`
	Identities           []effectiveIdentity  `json:"identities"`
	LifetimeInMinutes    *int                 `json:"lifetimeInMinutes"`
	DatasourceIdentities []datasourceIdentity `json:"datasourceIdentities"`
}

// datasourceIdentity is the DatasourceIdentity wire object: one identity
// blob (here a plain string) for the SSO data sources it names.
type datasourceIdentity struct {
	IdentityBlob string               `json:"identityBlob"`
	Datasources  []datasourceSelector `json:"datasources"`
}

// datasourceSelector is the DatasourceSelector wire object.
type datasourceSelector struct {
	DatasourceType    string `json:"datasourceType"`
	ConnectionDetails struct {
		Server   string `json:"server"`
		Database string `json:"database"`
		URL      string `json:"url"`
		Path     string `json:"path"`
		Kind     string `json:"kind"`
	} `json:"connectionDetails"`
}

// matches reports whether the selector names src: same type and the same
// connection details, ignoring case.
func (sel *datasourceSelector) matches(src *Datasource) bool {
	cd := sel.ConnectionDetails
	return strings.EqualFold(sel.DatasourceType, src.Type) &&
		strings.EqualFold(cd.Server, src.Server) && strings.EqualFold(cd.Database, src.Database) &&
		strings.EqualFold(cd.URL, src.URL) && strings.EqualFold(cd.Path, src.Path) && strings.EqualFold(cd.Kind, src.Kind)
}

// generateTokenV1 is the GenerateTokenRequest wire object.
type generateTokenV1 struct {
	AccessLevel       string              `json:"accessLevel"`
	DatasetID         string              `json:"datasetId"`
	AllowSaveAs       flexBool            `json:"allowSaveAs"`
	Identities        []effectiveIdentity `json:"identities"`
	LifetimeInMinutes *int                `json:"lifetimeInMinutes"`
}

// decodeBody reads a JSON request body. Field names match in any case (as
// encoding/json does) and unknown fields are ignored, like the real
// service. A body needs Content-Type application/json; an empty body is
// an empty object.
func decodeBody(r *http.Request, dst any) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	if err != nil {
		return invalidRequest("Could not read the request body.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	// [unk] status and code; the message is the real one.
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "UnsupportedMediaType", message: "The request contains an entity body but no Content-Type header. The inferred media type 'application/octet-stream' is not supported for this resource."}
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "UnsupportedMediaType", message: fmt.Sprintf("The request entity's media type '%s' is not supported for this resource.", ct)}
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return invalidRequest("The request body is not valid: " + err.Error())
	}
	return nil
}

// lifetime validates lifetimeInMinutes: absent or 0 means the Entra
// token's remaining lifetime, negative is refused.
func lifetime(v *int) (int, *apiError) {
	if v == nil {
		return 0, nil
	}
	if *v < 0 {
		return 0, invalidRequest("lifetimeInMinutes must be a positive integer.")
	}
	return *v, nil
}

// normalizeAccessLevel maps any case of View/Edit/Create to its canonical
// spelling ("" stays "").
func normalizeAccessLevel(s string) (string, bool) {
	for _, v := range []string{"View", "Edit", "Create"} {
		if strings.EqualFold(s, v) {
			return v, true
		}
	}
	return "", s == ""
}

// normalizeXmla maps any case of Off/ReadOnly; absent means Off.
func normalizeXmla(s string) (string, bool) {
	switch {
	case s == "" || strings.EqualFold(s, "Off"):
		return "Off", true
	case strings.EqualFold(s, "ReadOnly"):
		return "ReadOnly", true
	}
	return "", false
}
