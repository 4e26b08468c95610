package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/embedgate/embedgate/internal/jsonlog"
)

// chain is the interceptor chain, built by New and documented there.
type chain struct {
	unary  []grpc.UnaryServerInterceptor
	stream []grpc.StreamServerInterceptor
}

// newChain assembles the chain, outermost first. go-grpc-middleware provides
// recovery, logging, auth and selector; two links are ours because the
// library's versions lose what callers need: its rate limiter answers without
// google.rpc.RetryInfo, and its protovalidate interceptor answers with
// buf.validate.Violations instead of google.rpc.BadRequest and ErrorInfo.
func newChain(logger *slog.Logger, m *Metrics, shed *inFlight, a authenticator, limits *callerLimits, v protovalidate.Validator, now func() time.Time) chain {
	rec := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic recovered", "request_id", requestIDFrom(ctx), "panic", p, "stack", string(debug.Stack()))
		return errorStatus(errPanic).Err()
	})
	needsCaller := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool { return !publicServices[c.Service] })
	authFn := func(ctx context.Context) (context.Context, error) {
		id, err := a.identify(ctx)
		if err != nil {
			return nil, errorStatus(err).Err()
		}
		logging.AddFields(ctx, logging.Fields{"caller", id})
		return withCaller(ctx, id), nil
	}
	val := newValidator(v)
	var c chain
	c.unary = append(c.unary, requestIDUnary)
	c.stream = append(c.stream, requestIDStream)
	if m != nil {
		c.unary = append(c.unary, m.grpc.UnaryServerInterceptor())
		c.stream = append(c.stream, m.grpc.StreamServerInterceptor())
	}
	c.unary = append(c.unary,
		logging.UnaryServerInterceptor(callLogger(logger), callLogOptions...),
		recovery.UnaryServerInterceptor(rec),
		selector.UnaryServerInterceptor(shed.unary(), needsCaller),
		selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(authFn), needsCaller),
		selector.UnaryServerInterceptor(limits.unary(now), needsCaller),
		val.unary(),
	)
	c.stream = append(c.stream,
		logging.StreamServerInterceptor(callLogger(logger), callLogOptions...),
		recovery.StreamServerInterceptor(rec),
		selector.StreamServerInterceptor(shed.stream(), needsCaller),
		selector.StreamServerInterceptor(auth.StreamServerInterceptor(authFn), needsCaller),
		selector.StreamServerInterceptor(limits.stream(now), needsCaller),
		val.stream(),
	)
	return c
}

// callLogOptions configure go-grpc-middleware's logging interceptor for
// callLogger: one record when the call ends, and no field built that the
// record does not write.
var callLogOptions = []logging.Option{
	logging.WithLogOnEvents(logging.FinishCall),
	// The common fields are dropped: callLogger reads the method from the
	// call's stream, and every field kept is copied and compared by the
	// library on every call.
	logging.WithDisableLoggingFields(logging.SystemTag[0], logging.ComponentFieldKey, logging.MethodTypeFieldKey,
		logging.ServiceFieldKey, logging.MethodFieldKey),
	// The record has no grpc.start_time (nor deadline): with no layout,
	// the library's per-call timestamps cost nothing to format.
	logging.WithTimestampFormat(""),
	logging.WithLevels(levelFor),
	// callLogger times the call from its request id's link, the
	// outermost: the library's duration field would cost four
	// allocations more per call.
	logging.WithDurationField(func(time.Duration) logging.Fields { return nil }),
	logging.WithErrorFields(func(err error) logging.Fields { return logging.Fields{"error", status.Convert(err).Message()} }),
}

// publicServices are reachable by any peer that completed the mTLS
// handshake, identity or not: operators' health checks and grpcurl's
// reflection.
var publicServices = map[string]bool{
	healthpb.Health_ServiceDesc.ServiceName:               true,
	reflectionv1.ServerReflection_ServiceDesc.ServiceName: true,
	"grpc.reflection.v1alpha.ServerReflection":            true,
}

// requestIDHeader is the request and response header (and log field) that
// names a call, so an operator can find its log and audit records.
const requestIDHeader = "x-request-id"

// maxRequestIDLength bounds an incoming x-request-id that is kept.
const maxRequestIDLength = 64

type callKey struct{}

// callInfo is what the outermost link knows of a call: its request id and
// when it started (the call record's duration).
type callInfo struct {
	id    string
	start time.Time
}

// requestIDFrom returns the call's request id ("" outside a call).
func requestIDFrom(ctx context.Context) string {
	if c, ok := ctx.Value(callKey{}).(*callInfo); ok {
		return c.id
	}
	return ""
}

// callDuration is how long the call has run, as the call record writes it
// ("" outside a call).
func callDuration(ctx context.Context) string {
	if c, ok := ctx.Value(callKey{}).(*callInfo); ok {
		return time.Since(c.start).String()
	}
	return ""
}

// requestID is the call's id: the caller's (or the mesh's) x-request-id when
// it is a sane one, so that the id correlates across services, else a new
// random one. It is sent back as a response header.
func requestID(ctx context.Context) (context.Context, string) {
	id := ""
	if v := metadata.ValueFromIncomingContext(ctx, requestIDHeader); len(v) == 1 && validRequestID(v[0]) {
		id = v[0]
	}
	if id == "" {
		// Unique, not secret: math/rand's generator (ChaCha8, seeded by the
		// runtime) costs no system call.
		var b [12]byte
		binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
		binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
		id = hex.EncodeToString(b[:])
	}
	return context.WithValue(ctx, callKey{}, &callInfo{id: id, start: time.Now()}), id
}

// validRequestID accepts 1 to 64 characters of what request ids are made of
// (uuids, hex, Envoy's and most tracers' ids): nothing that could forge a log
// field or grow a record.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func requestIDUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	ctx, id := requestID(ctx)
	_ = grpc.SetHeader(ctx, metadata.MD{requestIDHeader: {id}})
	return next(ctx, req)
}

func requestIDStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	ctx, id := requestID(ss.Context())
	_ = ss.SetHeader(metadata.MD{requestIDHeader: {id}})
	return next(srv, &contextStream{ServerStream: ss, ctx: ctx})
}

// callLogger writes go-grpc-middleware's one record per call as Embedgate's
// "grpc call" record, with the field names used everywhere in the service:
// request_id, method, code, duration, caller, tenant, token_id,
// pbi_request_id, error; and for user owns data entra_tenant (or
// claimed_entra_tenant, before the assertion is verified) and user_oid (the
// user's object id, never a token). The request id comes from the call's
// context; fields the handler learns as the call proceeds arrive through
// logging.AddFields. (A switch, not a table: it runs on every call.)
func callLogger(logger *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		var f struct {
			code, caller, tenant, tokenID, pbiRequestID, err string
			entraTenant, claimedEntraTenant, userOID         string
		}
		for i := 0; i+1 < len(fields); i += 2 {
			k, _ := fields[i].(string)
			v, _ := fields[i+1].(string)
			switch k {
			case "grpc.code":
				f.code = v
			case "caller":
				f.caller = v
			case "tenant":
				f.tenant = v
			case "token_id":
				f.tokenID = v
			case "pbi_request_id":
				f.pbiRequestID = v
			case "entra_tenant":
				f.entraTenant = v
			case "claimed_entra_tenant":
				f.claimedEntraTenant = v
			case "user_oid":
				f.userOID = v
			case "error":
				f.err = v
			}
		}
		method, _ := grpc.Method(ctx) // "/embedgate.v1.EmbedTokenService/GenerateEmbedToken"
		var buf [12]slog.Attr         // on the stack: logAttrs keeps none
		attrs := append(buf[:0],
			slog.String("request_id", requestIDFrom(ctx)),
			slog.String("method", method),
			slog.String("code", f.code),
			slog.String("duration", callDuration(ctx)))
		for _, a := range [...][2]string{{"caller", f.caller}, {"tenant", f.tenant}, {"entra_tenant", f.entraTenant}, {"claimed_entra_tenant", f.claimedEntraTenant}, {"user_oid", f.userOID}, {"token_id", f.tokenID}, {"pbi_request_id", f.pbiRequestID}, {"error", f.err}} {
			if a[1] != "" {
				attrs = append(attrs, slog.String(a[0], a[1]))
			}
		}
		logAttrs(ctx, logger, slog.Level(lvl), "grpc call", attrs...)
	})
}

// logAttrs is logger.LogAttrs without the caller's program counter, which
// no handler of the service prints and which costs slog a stack walk per
// record: for the records written on every call. The service's own handler
// (jsonlog) takes the attributes as they are, without a slog.Record.
func logAttrs(ctx context.Context, logger *slog.Logger, level slog.Level, msg string, attrs ...slog.Attr) {
	h := logger.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	if jh, ok := h.(*jsonlog.Handler); ok {
		_ = jh.HandleAttrs(ctx, time.Now(), level, msg, attrs)
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	_ = h.Handle(ctx, r)
}

// levelFor follows go-grpc-middleware's server defaults: callers' mistakes
// are Info, trouble worth a look is Warn, our own failures are Error.
func levelFor(c codes.Code) logging.Level {
	switch c {
	case codes.OK, codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.Unauthenticated:
		return logging.LevelInfo
	case codes.Unknown, codes.Internal, codes.DataLoss, codes.Unimplemented:
		return logging.LevelError
	default:
		return logging.LevelWarn
	}
}

// validator enforces the protovalidate rules written in the .proto, so
// handlers never re-check them. The rules are fixed at build time, so a
// request that passed once always passes: the verdicts of the last requests
// are kept by a digest of their content, and a repeated request (a browser
// renewing the same grant) skips the rules' evaluation, which is most of
// what validation costs.
type validator struct {
	v protovalidate.Validator

	mu     sync.Mutex
	passed map[[sha256.Size]byte]struct{}
}

// validatedCacheSize bounds the verdicts kept; when full they are dropped
// all at once, which costs one evaluation per distinct request after.
const validatedCacheSize = 8192

func newValidator(v protovalidate.Validator) *validator {
	return &validator{v: v, passed: make(map[[sha256.Size]byte]struct{})}
}

func (val *validator) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		if err := val.validate(req); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (val *validator) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		return next(srv, &validatingStream{ServerStream: ss, val: val})
	}
}

func (val *validator) validate(req any) error {
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	if msg, field, bad := malformed(m); bad {
		return errorStatus(&malformedError{msg: msg, field: field}).Err()
	}
	key, keyed := digest(m)
	if keyed {
		val.mu.Lock()
		_, seen := val.passed[key]
		val.mu.Unlock()
		if seen {
			return nil
		}
	}
	if err := val.v.Validate(m); err != nil {
		return errorStatus(err).Err()
	}
	if keyed {
		val.mu.Lock()
		if len(val.passed) >= validatedCacheSize {
			clear(val.passed)
		}
		val.passed[key] = struct{}{}
		val.mu.Unlock()
	}
	return nil
}

// digest identifies a message by its type and deterministic wire form.
func digest(m proto.Message) ([sha256.Size]byte, bool) {
	bp := digestBufs.Get().(*[]byte)
	defer digestBufs.Put(bp)
	b := append(append((*bp)[:0], m.ProtoReflect().Descriptor().FullName()...), 0)
	b, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(b, m)
	if err != nil {
		return [sha256.Size]byte{}, false
	}
	if cap(b) <= 64<<10 { // a huge request's buffer is not kept
		*bp = b
	}
	return sha256.Sum256(b), true
}

// digestBufs are digest's buffers: a request is marshalled on every call.
var digestBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// validatingStream validates every message a client streams in.
type validatingStream struct {
	grpc.ServerStream
	val *validator
}

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.val.validate(m)
}

// contextStream swaps a stream's context.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }
