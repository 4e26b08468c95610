package server

import (
	"context"
	"crypto/x509"
	"errors"
	"sync"

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
	ids         *certIDs             // nil = each call reads its certificate
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
	id, err := a.ids.of(ti.State.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, errUnauthenticated
	}
	return id, nil
}

// certIDs keeps the SPIFFE IDs of the client certificates of recent
// connections. Every call on a connection presents the same parsed
// certificate (the *x509.Certificate of its handshake), so the ID, a pure
// function of it, is read once per connection instead of once per call.
// At most size are kept; when full they are dropped at once.
type certIDs struct {
	size int
	mu   sync.Mutex
	m    map[*x509.Certificate]spiffeid.ID
}

// newAuthenticator is New's authenticator: a certificate's ID is kept for
// up to twice limits.max_connections certificates, so that the connections
// open, and as many closed, never drop each other's.
func newAuthenticator(td spiffeid.TrustDomain, mesh *meshAuth, maxConnections int) authenticator {
	return authenticator{trustDomain: td, mesh: mesh, ids: newCertIDs(max(2*maxConnections, 64))}
}

func newCertIDs(size int) *certIDs {
	return &certIDs{size: size, m: map[*x509.Certificate]spiffeid.ID{}}
}

// of returns the certificate's one SPIFFE ID (x509svid.IDFromCert).
func (c *certIDs) of(cert *x509.Certificate) (spiffeid.ID, error) {
	if c == nil {
		return x509svid.IDFromCert(cert)
	}
	c.mu.Lock()
	id, ok := c.m[cert]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := x509svid.IDFromCert(cert)
	if err != nil {
		return id, err // not kept: refused on every call, as without the cache
	}
	c.mu.Lock()
	if len(c.m) >= c.size {
		clear(c.m)
	}
	c.m[cert] = id
	c.mu.Unlock()
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
