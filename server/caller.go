package server

import (
	"context"
	"errors"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// authenticator establishes the caller's identity: the one SPIFFE ID (URI
// SAN) of the verified client certificate or, in mesh mode and only from a
// trusted sidecar, the one in x-forwarded-client-cert; optionally
// restricted to a trust domain.
type authenticator struct {
	trustDomain spiffeid.TrustDomain // zero = any
	mesh        *meshAuth            // nil = mesh mode off
}

// errUnauthenticated is the one answer for every way an identity can be
// missing, so that probing learns nothing about the checks.
var errUnauthenticated = errors.New("a client certificate with exactly one SPIFFE ID is required")

// errNoCaller means a handler ran without an authenticated caller in its
// context: the chain is misassembled. It fails closed, as INTERNAL.
var errNoCaller = errors.New("server: no authenticated caller in the call's context")

// errPanic is what a recovered panic answers (INTERNAL; the stack is logged).
var errPanic = errors.New("server: panic")

func (a authenticator) identify(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errUnauthenticated
	}
	id, err := a.peerIdentity(ctx, p)
	if err != nil {
		return "", err
	}
	if !a.trustDomain.IsZero() && !id.MemberOf(a.trustDomain) {
		return "", errUnauthenticated
	}
	return id.String(), nil
}

func (a authenticator) peerIdentity(ctx context.Context, p *peer.Peer) (spiffeid.ID, error) {
	if a.mesh != nil {
		if s, fromSidecar, err := a.mesh.identify(ctx, p); fromSidecar {
			if err != nil {
				return spiffeid.ID{}, err
			}
			return spiffeid.FromString(s)
		}
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.PeerCertificates) == 0 {
		return spiffeid.ID{}, errUnauthenticated
	}
	id, err := x509svid.IDFromCert(ti.State.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, errUnauthenticated
	}
	return id, nil
}

type callerKey struct{}

// withCaller records the authenticated caller, once, for the rest of the call.
func withCaller(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

// callerFrom returns the authenticated caller of the call, or errNoCaller:
// never an empty identity.
func callerFrom(ctx context.Context) (string, error) {
	if id, ok := ctx.Value(callerKey{}).(string); ok && id != "" {
		return id, nil
	}
	return "", errNoCaller
}
