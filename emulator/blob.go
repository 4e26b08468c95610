package emulator

import (
	"strings"
	"time"
)

// An identity blob is an Entra access token for an SSO data source
// ("Embed a report with token-based identity (SSO)": "The value provided
// in the identity blob should be a valid access token to Azure SQL
// Server"). The emulator accepts only tokens it issued, for the source's
// audience, not expired; it records what the blob was, never its value.

// BlobInfo describes an identity blob that reached a token: whom and what
// it was issued for, never the token itself.
type BlobInfo struct {
	// Audience is the blob's aud claim.
	Audience string `json:"audience"`
	// ObjectID is its oid claim: the user or service principal it
	// represents.
	ObjectID string `json:"objectId,omitempty"`
	// AppID is its appid (or azp) claim: the app that acquired it.
	AppID string `json:"appId,omitempty"`
	// Expires is its exp claim.
	Expires time.Time `json:"expires"`
}

// blobProblem says why a blob is refused ("" for none).
type blobProblem string

const (
	blobForeign blobProblem = "is not an access token issued by this Entra ID"
	blobExpired blobProblem = "has expired"
)

// readBlob verifies that value is an access token this emulator signed and
// that it has not expired.
func (s *Server) readBlob(value string) (BlobInfo, blobProblem) {
	tok, err := parseJWT(strings.TrimSpace(value))
	if err == nil && tok.headerString("kid") != s.kid {
		err = errBadToken
	}
	if err == nil {
		err = tok.verify(&s.signKey.PublicKey, false)
	}
	if err != nil {
		return BlobInfo{}, blobForeign
	}
	info := BlobInfo{ObjectID: tok.claimString("oid"), AppID: tok.claimString("appid")}
	if info.AppID == "" {
		info.AppID = tok.claimString("azp")
	}
	if auds := tok.audiences(); len(auds) > 0 {
		info.Audience = auds[0]
	}
	exp, ok := tok.claimUnix("exp")
	if !ok || !s.now().Before(time.Unix(exp, 0)) {
		return info, blobExpired
	}
	info.Expires = time.Unix(exp, 0).UTC()
	return info, ""
}

// sameResource compares two resource identifiers, ignoring case and a
// trailing slash (Entra issues https://database.windows.net/.default as
// aud https://database.windows.net/ or without the slash).
func sameResource(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}
