package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/embedgate/embedgate/powerbi"
)

// sentRequest is a GenerateToken request as it went out: method, URL,
// profile header and body. Never the Authorization header; an identity
// blob's value (a data source's access token) reads "[redacted]".
type sentRequest struct {
	Method    string `json:"method"`
	URL       string `json:"url"`
	ProfileID string `json:"profileId,omitempty"`
	Body      string `json:"body"`
}

// recorder is an HTTP transport that keeps the last GenerateToken request
// it carried, so that the command shows what was sent rather than what it
// meant to send.
type recorder struct {
	base   http.RoundTripper
	client *http.Client
	mu     sync.Mutex
	last   *sentRequest
}

// newRecorder wraps the client c's endpoints need (its CA, its timeouts).
func newRecorder(c powerbi.Config) (*recorder, error) {
	hc, err := c.HTTPClient()
	if err != nil {
		return nil, err
	}
	r := &recorder{base: hc.Transport}
	if r.base == nil {
		r.base = http.DefaultTransport
	}
	rc := *hc
	rc.Transport = r
	r.client = &rc
	return r, nil
}

// RoundTrip records a GenerateToken POST and sends it on.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/GenerateToken") && req.Body != nil {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		sent := &sentRequest{Method: req.Method, URL: req.URL.String(), ProfileID: req.Header.Get("X-PowerBI-Profile-Id"), Body: redactBlobs(body)}
		r.mu.Lock()
		r.last = sent
		r.mu.Unlock()
	}
	return r.base.RoundTrip(req)
}

// sent is the last GenerateToken request, nil if none.
func (r *recorder) sent() *sentRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// redactBlobs returns body as sent, but for the identity blobs it carries
// (identities[].identityBlob.value, datasourceIdentities[].identityBlob:
// data sources' access tokens), which read "[redacted]" in place, the rest
// byte for byte: as ExplainEmbedToken shows the same request.
func redactBlobs(body []byte) string {
	if !bytes.Contains(bytes.ToLower(body), []byte("identityblob")) {
		return string(body)
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		return "[a body with an identity blob, not shown]"
	}
	var blobs []string
	var walk func(any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, c := range t {
				if !strings.EqualFold(k, "identityBlob") {
					walk(c)
					continue
				}
				switch b := c.(type) {
				case string:
					blobs = append(blobs, b)
				case map[string]any:
					for _, bv := range b {
						if s, ok := bv.(string); ok {
							blobs = append(blobs, s)
						}
					}
				}
			}
		case []any:
			for _, c := range t {
				walk(c)
			}
		}
	}
	walk(v)
	out := body
	for _, b := range blobs {
		if b == "" {
			continue
		}
		quoted, _ := json.Marshal(b)
		out = bytes.ReplaceAll(out, quoted, []byte(`"[redacted]"`))
	}
	for _, b := range blobs {
		if b != "" && bytes.Contains(out, []byte(b)) {
			return "[a body with an identity blob, not shown]"
		}
	}
	return string(out)
}
