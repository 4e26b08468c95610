package emulator

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// MaxRecorded is how many requests [Server.Requests] keeps per route: the
// most recent ones, so a long run (a benchmark, a soak) stays bounded.
const MaxRecorded = 1000

// redacted replaces a credential in a recorded request.
const redacted = "[redacted]"

// Recorded is one request as the emulator received it, for tests that
// check what a client sent (see [Server.Requests]). Credentials are never
// kept: Authorization keeps its scheme only, and the client_secret and
// client_assertion of an Entra token request read "[redacted]".
type Recorded struct {
	// Route is the route name (a Route* constant).
	Route string `json:"route"`
	// Time is when the request arrived, on the emulator's clock.
	Time time.Time `json:"time"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path is the URL path as sent.
	Path string `json:"path"`
	// Query is the decoded URL query.
	Query url.Values `json:"query"`
	// Header is every request header, Authorization reduced to its scheme
	// (for example "Bearer").
	Header http.Header `json:"header"`
	// ProfileID is the X-PowerBI-Profile-Id header, if any: the principal
	// the call acts as.
	ProfileID string `json:"profileId,omitempty"`
	// Body is the request body (at most 1 MiB).
	Body []byte `json:"-"`
}

// MarshalJSON writes Body as text: Power BI and Entra bodies are JSON and
// forms, which read better than base64 in the admin route.
func (r Recorded) MarshalJSON() ([]byte, error) {
	type plain Recorded
	return json.Marshal(struct {
		plain
		Body string `json:"body"`
	}{plain(r), string(r.Body)})
}

// recorder keeps the last MaxRecorded requests of each route.
type recorder struct {
	mu      sync.Mutex
	byRoute map[string][]Recorded
}

func (rc *recorder) add(rec Recorded) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.byRoute == nil {
		rc.byRoute = map[string][]Recorded{}
	}
	list := append(rc.byRoute[rec.Route], rec)
	if len(list) > MaxRecorded {
		list = append([]Recorded(nil), list[len(list)-MaxRecorded:]...)
	}
	rc.byRoute[rec.Route] = list
}

func (rc *recorder) get(route string) []Recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]Recorded, len(rc.byRoute[route]))
	copy(out, rc.byRoute[route])
	return out
}

func (rc *recorder) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.byRoute = nil
}

// record reads the request body (leaving it readable for the handler) and
// returns the request as recorded, credentials removed.
func record(r *http.Request, route string, now time.Time) Recorded {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
		r.Body = readCloser{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	}
	header := r.Header.Clone()
	if auth := header.Get("Authorization"); auth != "" {
		scheme, _, _ := strings.Cut(auth, " ")
		header.Set("Authorization", scheme)
	}
	return Recorded{
		Route:     route,
		Time:      now,
		Method:    r.Method,
		Path:      r.URL.Path,
		Query:     r.URL.Query(),
		Header:    header,
		ProfileID: strings.TrimSpace(r.Header.Get(headerProfileID)),
		Body:      redactForm(r.Header.Get("Content-Type"), body),
	}
}

// formCredentials are the form fields of Entra requests that carry a
// credential: client secrets and assertions, passwords, users' tokens.
var formCredentials = []string{"client_secret", "client_assertion", "password", "assertion", "refresh_token", "device_code"}

// redactForm blanks the credentials of a form body (an Entra token
// request) and the identity blobs of a JSON body (GenerateToken); other
// bodies are kept as sent.
func redactForm(contentType string, body []byte) []byte {
	if strings.HasPrefix(strings.ToLower(contentType), "application/json") {
		return redactBlobs(body)
	}
	if !strings.HasPrefix(strings.ToLower(contentType), "application/x-www-form-urlencoded") {
		return body
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return []byte(redacted)
	}
	changed := false
	for _, k := range formCredentials {
		if _, ok := form[k]; ok {
			form.Set(k, redacted)
			changed = true
		}
	}
	if !changed {
		return body
	}
	return []byte(form.Encode())
}

// readCloser reads from one reader and closes another (the original body).
type readCloser struct {
	io.Reader
	io.Closer
}

// redactBlobs replaces every identityBlob (an access token for a data
// source) of a JSON body; a body without one is kept byte for byte.
func redactBlobs(body []byte) []byte {
	if !bytes.Contains(bytes.ToLower(body), []byte("identityblob")) {
		return body
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return []byte(redacted)
	}
	var walk func(any)
	walk = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			for k, val := range t {
				if strings.EqualFold(k, "identityBlob") {
					t[k] = redacted
					continue
				}
				walk(val)
			}
		case []any:
			for _, val := range t {
				walk(val)
			}
		}
	}
	walk(v)
	out, err := json.Marshal(v)
	if err != nil {
		return []byte(redacted)
	}
	return out
}
