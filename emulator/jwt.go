package emulator

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// jwtToken is a decoded (not yet verified) compact JWS.
type jwtToken struct {
	header       map[string]any
	claims       map[string]any
	signingInput string
	signature    []byte
}

// parseJWT splits and decodes a compact JWS without checking it.
func parseJWT(s string) (*jwtToken, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWT")
	}
	t := &jwtToken{signingInput: parts[0] + "." + parts[1]}
	for i, dst := range []*map[string]any{&t.header, &t.claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return nil, fmt.Errorf("JWT part %d: %w", i, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			return nil, fmt.Errorf("JWT part %d: %w", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("JWT signature: %w", err)
	}
	t.signature = sig
	return t, nil
}

// verify checks the signature for RS256 or PS256 with pub.
func (t *jwtToken) verify(pub *rsa.PublicKey, allowPS256 bool) error {
	sum := sha256.Sum256([]byte(t.signingInput))
	switch alg := t.headerString("alg"); {
	case alg == "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], t.signature)
	case alg == "PS256" && allowPS256:
		return rsa.VerifyPSS(pub, crypto.SHA256, sum[:], t.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	default:
		return fmt.Errorf("unsupported alg %q", alg)
	}
}

// verifyWith checks the signature with an RSA key (RS256, PS256) or an
// ECDSA P-256 key (ES256), the keys token issuers such as Kubernetes and
// GitHub sign with.
func (t *jwtToken) verifyWith(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return t.verify(k, true)
	case *ecdsa.PublicKey:
		if alg := t.headerString("alg"); alg != "ES256" {
			return fmt.Errorf("unsupported alg %q for an EC key", alg)
		}
		if len(t.signature) != 64 {
			return errors.New("ES256 signature is not 64 bytes")
		}
		sum := sha256.Sum256([]byte(t.signingInput))
		r, s := new(big.Int).SetBytes(t.signature[:32]), new(big.Int).SetBytes(t.signature[32:])
		if !ecdsa.Verify(k, sum[:], r, s) {
			return errors.New("ES256 signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T", pub)
}

func (t *jwtToken) headerString(k string) string {
	s, _ := t.header[k].(string)
	return s
}

func (t *jwtToken) claimString(k string) string {
	s, _ := t.claims[k].(string)
	return s
}

// claimUnix reads a NumericDate claim.
func (t *jwtToken) claimUnix(k string) (int64, bool) {
	switch v := t.claims[k].(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n, true
		}
		if f, err := v.Float64(); err == nil {
			return int64(f), true
		}
	case string:
		n, err := json.Number(v).Int64()
		return n, err == nil
	}
	return 0, false
}

// audiences reads aud, which may be a string or an array.
func (t *jwtToken) audiences() []string {
	switch v := t.claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// signRS256 produces a compact JWS.
func signRS256(key *rsa.PrivateKey, header, claims map[string]any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// decodeThumbprint accepts the standard (what MSAL sends) and URL-safe
// base64 alphabets, padded or not.
func decodeThumbprint(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}
