// Package embedgateclient is the Go client of Embedgate, the platform
// service that mints Power BI embed tokens. It is thin: the generated gRPC
// client (github.com/embedgate/embedgate/gen/embedgate/v1) does the calls;
// this package adds what every caller would otherwise write itself:
//
//   - mTLS: [Dial] with credentials from PEM files ([FileCredentials]) or
//     from the SPIFFE Workload API ([DialWorkloadAPI], [SPIFFECredentials]);
//   - a [TokenSource] that reuses a token until its refresh_time and makes one
//     call for any number of concurrent askers;
//   - error helpers: [DetailsOf] decodes the google.rpc.ErrorInfo, BadRequest
//     and RetryInfo of an error in one call, and [ReasonOf], [IsRetryable],
//     [RetryAfter] and [FieldViolations] answer the usual questions.
//
// Every error Embedgate returns carries an ErrorInfo whose reason is the name
// of an [embedgatev1.Reason] value; [ActionOf] says what to do about each.
package embedgateclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffegrpc/grpccredentials"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

// Client is a connection to Embedgate. Its methods are the generated
// EmbedTokenServiceClient's; it is safe for concurrent use, and one Client
// per process is enough.
type Client struct {
	embedgatev1.EmbedTokenServiceClient
	conn    *grpc.ClientConn
	closers []func() error
}

// Dial returns a Client for target ("host:port", or any gRPC target such as
// "dns:///embedgate.platform.svc:8443") that authenticates with creds. It
// does not connect yet: the first call does. opts are added after the
// client's own (transport credentials and a user agent).
func Dial(target string, creds credentials.TransportCredentials, opts ...grpc.DialOption) (*Client, error) {
	all := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("embedgate-go/" + Version),
	}, opts...)
	conn, err := grpc.NewClient(target, all...)
	if err != nil {
		return nil, err
	}
	return &Client{EmbedTokenServiceClient: embedgatev1.NewEmbedTokenServiceClient(conn), conn: conn}, nil
}

// Conn is the underlying gRPC connection (for health checks, say).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection, and the Workload API source when the Client
// came from [DialWorkloadAPI].
func (c *Client) Close() error {
	errs := []error{c.conn.Close()}
	for _, f := range c.closers {
		errs = append(errs, f())
	}
	return errors.Join(errs...)
}

// Files names a caller's mTLS material, PEM-encoded.
type Files struct {
	// CA is the bundle of CA certificates that Embedgate's server
	// certificate must chain to.
	CA string
	// Cert is the caller's certificate (its SPIFFE ID is the URI SAN),
	// optionally followed by intermediates; Key is its private key.
	Cert, Key string
	// ServerName, when set, is the name the server certificate is checked
	// against instead of the target's host (for example "localhost" for the
	// dev server's certificate).
	ServerName string
}

// FileCredentials returns mTLS credentials read from files. The certificate
// and key are read again when either file changes (a rotated certificate
// is used from the next connection on); the CA bundle is read once.
func FileCredentials(f Files) (credentials.TransportCredentials, error) {
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("embedgateclient: CA bundle: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("embedgateclient: CA bundle %s holds no PEM certificate", f.CA)
	}
	kp := &keyPairFiles{cert: f.Cert, key: f.Key}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    roots,
		ServerName: f.ServerName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return kp.get()
		},
	}), nil
}

// keyPairFiles is a certificate and key on disk, reloaded when either
// file's size or modification time changes.
type keyPairFiles struct {
	cert, key string

	mu    sync.Mutex
	stamp string
	pair  *tls.Certificate
}

func (k *keyPairFiles) get() (*tls.Certificate, error) {
	stamp := stampOf(k.cert) + "|" + stampOf(k.key)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.pair != nil && stamp == k.stamp {
		return k.pair, nil
	}
	pair, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.pair != nil { // a rotation half-written: keep the last good pair
			return k.pair, nil
		}
		return nil, fmt.Errorf("embedgateclient: client certificate: %w", err)
	}
	k.pair, k.stamp = &pair, stamp
	return k.pair, nil
}

func stampOf(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}

// SPIFFECredentials returns mTLS credentials that present the X.509-SVID of
// svids, trust the bundles of bundles, and accept the server only when
// server authorizes its SPIFFE ID (for example
// tlsconfig.AuthorizeID(spiffeid.RequireFromString("spiffe://mesh.example/ns/platform/sa/embedgate"))).
// A [workloadapi.X509Source] is both sources and keeps them rotated; static
// ones (an *x509svid.SVID and an *x509bundle.Bundle) work too.
func SPIFFECredentials(svids x509svid.Source, bundles x509bundle.Source, server tlsconfig.Authorizer) credentials.TransportCredentials {
	return grpccredentials.MTLSClientCredentials(svids, bundles, server)
}

// DialWorkloadAPI returns a Client whose identity comes from the SPIFFE
// Workload API (the SPIRE agent's socket, from SPIFFE_ENDPOINT_SOCKET unless
// sourceOpts say otherwise), rotated as the agent rotates it. It waits, up to
// ctx, for the first SVID. Close also closes the source. For other dial
// options, build the source yourself and pass [SPIFFECredentials] to [Dial].
func DialWorkloadAPI(ctx context.Context, target string, server tlsconfig.Authorizer, sourceOpts ...workloadapi.X509SourceOption) (*Client, error) {
	src, err := workloadapi.NewX509Source(ctx, sourceOpts...)
	if err != nil {
		return nil, fmt.Errorf("embedgateclient: SPIFFE Workload API: %w", err)
	}
	c, err := Dial(target, SPIFFECredentials(src, src, server))
	if err != nil {
		src.Close()
		return nil, err
	}
	c.closers = append(c.closers, src.Close)
	return c, nil
}

// defaultFetchTimeout bounds one token request made by a TokenSource.
const defaultFetchTimeout = 30 * time.Second
