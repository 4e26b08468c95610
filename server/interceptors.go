package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// requestIDHeader is the response header (and log field) that names a call,
// so an operator can find its log and audit records.
const requestIDHeader = "x-request-id"

// call is what the interceptors and the handler learn about one call; the
// logging interceptor writes it as one record when the call ends.
type call struct {
	requestID string
	caller    string
	tenant    string
	tokenID   string
	pbiReqID  string
}

type callKey struct{}

func callFrom(ctx context.Context) *call {
	if c, ok := ctx.Value(callKey{}).(*call); ok {
		return c
	}
	return &call{}
}

// publicServices are reachable by any peer that completed the mTLS
// handshake, identity or not: operators' health checks and grpcurl's
// reflection.
var publicServices = map[string]bool{
	healthpb.Health_ServiceDesc.ServiceName:               true,
	reflectionv1.ServerReflection_ServiceDesc.ServiceName: true,
	"grpc.reflection.v1alpha.ServerReflection":            true,
}

func isPublic(fullMethod string) bool {
	svc, _, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	return publicServices[svc]
}

// recoverUnary turns a panic into INTERNAL with no detail for the caller and
// the stack in the log.
func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				logger.ErrorContext(ctx, "panic recovered", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		return next(ctx, req)
	}
}

func recoverStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				logger.ErrorContext(ss.Context(), "panic recovered", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return next(srv, ss)
	}
}

// logUnary gives each call a request id and writes one record when it ends:
// method, caller, tenant, code, duration, and the Power BI ids when a token
// was minted. Never the request or response bodies.
func logUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		c := &call{requestID: newRequestID()}
		if r, ok := req.(interface{ GetTenant() string }); ok {
			c.tenant = r.GetTenant() // logged even when validation refuses the call
		}
		ctx = context.WithValue(ctx, callKey{}, c)
		_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDHeader, c.requestID))
		start := time.Now()
		resp, err := next(ctx, req)
		logCall(ctx, logger, info.FullMethod, c, start, err)
		return resp, err
	}
}

func logStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		c := &call{requestID: newRequestID()}
		ctx := context.WithValue(ss.Context(), callKey{}, c)
		_ = ss.SetHeader(metadata.Pairs(requestIDHeader, c.requestID))
		start := time.Now()
		err := next(srv, &contextStream{ServerStream: ss, ctx: ctx})
		logCall(ctx, logger, info.FullMethod, c, start, err)
		return err
	}
}

func logCall(ctx context.Context, logger *slog.Logger, method string, c *call, start time.Time, err error) {
	code := status.Code(err)
	attrs := []slog.Attr{
		slog.String("request_id", c.requestID),
		slog.String("method", method),
		slog.String("code", code.String()),
		slog.Duration("duration", time.Since(start)),
	}
	for _, a := range [][2]string{{"caller", c.caller}, {"tenant", c.tenant}, {"token_id", c.tokenID}, {"pbi_request_id", c.pbiReqID}} {
		if a[1] != "" {
			attrs = append(attrs, slog.String(a[0], a[1]))
		}
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", status.Convert(err).Message()))
	}
	logger.LogAttrs(ctx, levelFor(code), "grpc call", attrs...)
}

// levelFor follows go-grpc-middleware's server defaults: callers' mistakes
// are Info, trouble worth a look is Warn, our own failures are Error.
func levelFor(c codes.Code) slog.Level {
	switch c {
	case codes.OK, codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Unauthenticated:
		return slog.LevelInfo
	case codes.Unknown, codes.Internal, codes.DataLoss, codes.Unimplemented:
		return slog.LevelError
	default:
		return slog.LevelWarn
	}
}

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

func (a authenticator) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if !isPublic(info.FullMethod) {
			id, err := a.identify(ctx)
			if err != nil {
				return nil, errorStatus(err).Err()
			}
			callFrom(ctx).caller = id
		}
		return next(ctx, req)
	}
}

func (a authenticator) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		if !isPublic(info.FullMethod) {
			id, err := a.identify(ss.Context())
			if err != nil {
				return errorStatus(err).Err()
			}
			callFrom(ss.Context()).caller = id
		}
		return next(srv, ss)
	}
}

// validateUnary enforces the protovalidate rules written in the .proto, so
// handlers never re-check them.
func validateUnary(v protovalidate.Validator) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if m, ok := req.(proto.Message); ok {
			if err := v.Validate(m); err != nil {
				return nil, errorStatus(err).Err()
			}
		}
		return next(ctx, req)
	}
}

// badRequest lists each violated field for the caller.
func badRequest(ve *protovalidate.ValidationError) *errdetails.BadRequest {
	br := &errdetails.BadRequest{}
	for _, v := range ve.Violations {
		field := protovalidate.FieldPathString(v.Proto.GetField())
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       field,
			Description: v.Proto.GetMessage(),
			Reason:      v.Proto.GetRuleId(),
		})
	}
	return br
}

// contextStream swaps a stream's context for one carrying the call record.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
