package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/powerbi"
)

const (
	meshSelf    = "spiffe://cluster.local/ns/pbi/sa/embedgate"
	sidecarID   = "spiffe://cluster.local/ns/pbi/sa/embedgate-sidecar"
	hash        = "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688"
	otherCaller = "spiffe://embedgate.test/ns/admin/sa/root"
)

// minted is a gateway that mints a token for any report request.
var minted = issuerFunc(func(_ context.Context, r powerbi.TokenRequest) (*powerbi.EmbedToken, error) {
	return &powerbi.EmbedToken{Token: "t", TokenID: "id", Items: []powerbi.Embedded{{Kind: powerbi.KindReport, ID: r.Items[0].ID}}}, nil
})

// TestMeshMode: behind a sidecar, the caller comes from the last element of
// x-forwarded-client-cert, from a trusted peer only, written for us only.
func TestMeshMode(t *testing.T) {
	t.Parallel()
	mesh := func(peer string, plaintext bool) func(*Config) {
		return func(c *Config) {
			c.Mesh = MeshConfig{Enabled: true, Self: meshSelf, TrustedPeers: []string{peer}}
			if plaintext {
				c.TLS = TLSConfig{}
			}
		}
	}
	plain := newTestServer(t, minted, mesh("127.0.0.0/8", true))
	untrusted := newTestServer(t, minted, mesh("10.1.2.3", true))
	tlsMesh := newTestServer(t, minted, mesh(sidecarID, false))

	istio := "By=" + meshSelf + ";Hash=" + hash + `;Subject="";URI=` + testCaller
	tests := []struct {
		name     string
		srv      *testServer
		certID   string   // "" = plaintext connection
		xfcc     []string // header values
		wantCode codes.Code
		wantLog  string
	}{
		{name: "Istio shape from the sidecar", srv: plain, xfcc: []string{istio}, wantCode: codes.OK},
		{
			name:     "Envoy shape, quoted subject with separators, DNS repeated",
			srv:      plain,
			xfcc:     []string{"By=" + meshSelf + ";Hash=" + hash + `;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft,Inc;x=y/CN=Test Client";URI=` + testCaller + ";DNS=lyft.com;DNS=www.lyft.com"},
			wantCode: codes.OK,
		},
		{
			name:     "multi-hop: only the last element counts",
			srv:      plain,
			xfcc:     []string{"By=spiffe://cluster.local/ns/edge/sa/gw;URI=" + otherCaller + "," + istio},
			wantCode: codes.OK,
		},
		{
			name:     "multi-hop: an earlier element naming us does not count",
			srv:      plain,
			xfcc:     []string{istio + ",By=spiffe://cluster.local/ns/other/sa/svc;URI=" + otherCaller},
			wantCode: codes.Unauthenticated,
		},
		{
			name:     "spoofed: the last element was written for another service",
			srv:      plain,
			xfcc:     []string{"By=spiffe://cluster.local/ns/other/sa/svc;Hash=" + hash + ";URI=" + testCaller},
			wantCode: codes.Unauthenticated,
		},
		{name: "malformed: unterminated quote", srv: plain, xfcc: []string{"By=" + meshSelf + `;Subject="/CN=x;URI=` + testCaller}, wantCode: codes.Unauthenticated},
		{name: "malformed: two header values", srv: plain, xfcc: []string{istio, istio}, wantCode: codes.Unauthenticated},
		{name: "no header from the sidecar", srv: plain, wantCode: codes.Unauthenticated},
		{name: "two URIs", srv: plain, xfcc: []string{istio + ";URI=" + otherCaller}, wantCode: codes.Unauthenticated},
		{
			name:     "untrusted peer: the header is ignored and logged",
			srv:      untrusted,
			xfcc:     []string{istio},
			wantCode: codes.Unauthenticated,
			wantLog:  "possible spoofing attempt",
		},
		{name: "TLS from the sidecar's SPIFFE ID", srv: tlsMesh, certID: sidecarID, xfcc: []string{istio}, wantCode: codes.OK},
		{
			// A direct caller (not the sidecar) forges a header naming
			// someone else: it is ignored, and the caller is who its own
			// certificate says (not in this policy: denied).
			name:     "direct caller forging the header is itself",
			srv:      tlsMesh,
			certID:   otherCaller,
			xfcc:     []string{"By=" + meshSelf + ";URI=" + testCaller},
			wantCode: codes.PermissionDenied,
			wantLog:  "possible spoofing attempt",
		},
		{name: "direct caller without a header", srv: tlsMesh, certID: testCaller, wantCode: codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			client := tt.srv.dial(t, insecure.NewCredentials())
			if tt.certID != "" {
				client = tt.srv.dialTLS(t, tt.certID)
			}
			ctx := context.Background()
			for _, v := range tt.xfcc {
				ctx = metadata.AppendToOutgoingContext(ctx, xfccHeader, v)
			}
			_, err := client.GenerateEmbedToken(ctx, acmeRequest)
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if tt.wantLog != "" && !strings.Contains(tt.srv.logs.String(), tt.wantLog) {
				t.Errorf("the log does not say %q", tt.wantLog)
			}
		})
	}
}

func TestMeshConfigValidation(t *testing.T) {
	t.Parallel()
	var keys []string
	MeshConfig{Enabled: true, Self: "not-spiffe", TrustedPeers: []string{"127.0.0.6", "10.0.0.0/8", "spiffe://x/y", "nonsense"}}.
		validate(func(key, _ string, _ ...any) { keys = append(keys, key) })
	if strings.Join(keys, ",") != "mesh.self,mesh.trusted_peers[3]" {
		t.Errorf("problems under %v", keys)
	}
	keys = nil
	MeshConfig{Enabled: true, Self: meshSelf}.validate(func(key, _ string, _ ...any) { keys = append(keys, key) })
	if strings.Join(keys, ",") != "mesh.trusted_peers" {
		t.Errorf("problems under %v", keys)
	}
}
