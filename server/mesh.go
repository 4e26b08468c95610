package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/embedgate/embedgate/server/xfcc"
)

// xfccHeader is the header an Envoy or Istio sidecar sets with the client
// certificate it verified.
const xfccHeader = "x-forwarded-client-cert"

// MeshConfig turns on mesh mode: Embedgate runs behind an Envoy/Istio
// sidecar that terminates the callers' mTLS and forwards the verified
// client identity in x-forwarded-client-cert.
type MeshConfig struct {
	// Enabled turns mesh mode on (default off).
	Enabled bool `yaml:"enabled"`
	// Self is this service's own SPIFFE ID: the `By` our sidecar writes.
	// Headers whose last element was written for anyone else are refused.
	Self string `yaml:"self"`
	// TrustedPeers are who may set the header: IP addresses or CIDRs of the
	// sidecar (Istio forwards from 127.0.0.6), or SPIFFE IDs of the client
	// certificate the sidecar presents when it re-encrypts to Embedgate.
	// The header from any other peer is ignored and logged as spoofing.
	TrustedPeers []string `yaml:"trusted_peers"`
}

func (m MeshConfig) validate(add func(key, format string, args ...any)) {
	if !m.Enabled {
		return
	}
	if _, err := spiffeid.FromString(m.Self); err != nil {
		add("mesh.self", "want this service's SPIFFE ID: %v", err)
	}
	if len(m.TrustedPeers) == 0 {
		add("mesh.trusted_peers", "at least one sidecar address, CIDR or SPIFFE ID is required")
	}
	for i, p := range m.TrustedPeers {
		if _, err := parseTrustedPeer(p); err != nil {
			add(fmt.Sprintf("mesh.trusted_peers[%d]", i), "%v", err)
		}
	}
}

// trustedPeer is one entry of trusted_peers: an address range or an ID.
type trustedPeer struct {
	prefix netip.Prefix
	id     string
}

func parseTrustedPeer(s string) (trustedPeer, error) {
	if strings.HasPrefix(s, "spiffe://") {
		id, err := spiffeid.FromString(s)
		if err != nil {
			return trustedPeer{}, err
		}
		return trustedPeer{id: id.String()}, nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return trustedPeer{prefix: p.Masked()}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return trustedPeer{}, fmt.Errorf("%q is neither an IP address, a CIDR nor a SPIFFE ID", s)
	}
	return trustedPeer{prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}, nil
}

// meshAuth decides whether the immediate peer is our sidecar, and reads the
// caller from the header only then.
type meshAuth struct {
	self  string
	peers []trustedPeer
	log   *slog.Logger
}

func newMeshAuth(c MeshConfig, log *slog.Logger) (*meshAuth, error) {
	if !c.Enabled {
		return nil, nil
	}
	m := &meshAuth{self: c.Self, log: log}
	for _, s := range c.TrustedPeers {
		p, err := parseTrustedPeer(s)
		if err != nil {
			return nil, err
		}
		m.peers = append(m.peers, p)
	}
	return m, nil
}

// trusted reports whether the connection comes from a trusted sidecar.
func (m *meshAuth) trusted(p *peer.Peer) bool {
	var addr netip.Addr
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		addr, _ = netip.AddrFromSlice(tcp.IP)
		addr = addr.Unmap()
	}
	var certID string
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.PeerCertificates) > 0 {
		if id, err := x509svid.IDFromCert(ti.State.PeerCertificates[0]); err == nil {
			certID = id.String()
		}
	}
	for _, tp := range m.peers {
		if (tp.id != "" && tp.id == certID) || (tp.prefix.IsValid() && addr.IsValid() && tp.prefix.Contains(addr)) {
			return true
		}
	}
	return false
}

// identify returns the caller named by the header when the peer is a
// trusted sidecar (ok = true). For any other peer it ignores the header,
// logs it as a spoofing attempt if present, and returns ok = false so the
// peer's own certificate decides.
func (m *meshAuth) identify(ctx context.Context, p *peer.Peer) (id string, ok bool, err error) {
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get(xfccHeader)
	if !m.trusted(p) {
		if len(values) > 0 {
			m.log.WarnContext(ctx, "x-forwarded-client-cert from an untrusted peer ignored: possible spoofing attempt", "peer", p.Addr.String())
		}
		return "", false, nil
	}
	id, err = xfcc.Caller(values, m.self)
	if err != nil {
		m.log.WarnContext(ctx, "sidecar request without a usable caller identity", "peer", p.Addr.String(), "error", err)
		return "", true, errUnauthenticated
	}
	return id, true, nil
}
