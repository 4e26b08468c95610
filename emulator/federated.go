package emulator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// Workload identity federation ("Workload identity federation",
// learn.microsoft.com/entra/workload-id/workload-identity-federation): an
// app trusts tokens of another issuer whose issuer, subject and audience
// match one of its federated identity credentials, and accepts them as
// client_assertion.

// defaultFederatedAudience is the audience Entra suggests for federated
// credentials, and the one a credential gets when it names none.
const defaultFederatedAudience = "api://AzureADTokenExchange"

// federatedKey is a federated credential with its parsed signing key.
type federatedKey struct {
	cred FederatedCredential
	key  crypto.PublicKey
}

// audiences are the aud values the credential accepts.
func (fc FederatedCredential) audiences() []string {
	if len(fc.Audiences) == 0 {
		return []string{defaultFederatedAudience}
	}
	return fc.Audiences
}

// parseKeyPEM reads a PEM CERTIFICATE or PUBLIC KEY holding an RSA or
// ECDSA P-256 key.
func parseKeyPEM(text string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var pub crypto.PublicKey
	switch block.Type {
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		pub = cert.PublicKey
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		pub = k
	default:
		return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE or PUBLIC KEY", block.Type)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return k, nil
		}
	}
	return nil, fmt.Errorf("unsupported key %T (want RSA or ECDSA P-256)", pub)
}

// aadError is an Entra error reply: its status, OAuth error and AADSTS.

// checkFederated matches a client_assertion from another issuer against
// the app's federated credentials, then checks its signature and times.
func (s *Server) checkFederated(app *App, tok *jwtToken) *aadError {
	iss, sub, auds := tok.claimString("iss"), tok.claimString("sub"), tok.audiences()
	for _, fk := range s.world.federated[app] {
		// Issuer and subject match exactly, case included ("Federated
		// identity credentials now use case-sensitive matching", Entra's
		// breaking changes, 2025).
		if fk.cred.Issuer != iss || fk.cred.Subject != sub ||
			!slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(fk.cred.audiences(), a) }) {
			continue
		}
		if err := tok.verifyWith(fk.key); err != nil {
			// [unk] the code and message for a federated token whose
			// signature fails; the certificate path's are used.
			return &aadError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 700027, msg: "Client assertion failed signature validation."}
		}
		if msg := s.assertionTimes(tok); msg != "" {
			return &aadError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 700027, msg: msg}
		}
		return nil
	}
	aud := ""
	if len(auds) > 0 {
		aud = auds[0]
	}
	// The real message, as Entra returns it (for example in
	// github.com/Azure/azure-workload-identity/issues/616), with status 400.
	return &aadError{status: http.StatusBadRequest, code: "invalid_request", aadsts: 70021, msg: fmt.Sprintf(
		"No matching federated identity record found for presented assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. Assertion Audience: '%s'. https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation",
		iss, sub, aud)}
}
