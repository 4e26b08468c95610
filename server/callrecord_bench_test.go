package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/embedgate/embedgate/internal/jsonlog"
)

// benchStream is the transport stream a call's context holds (grpc.Method,
// grpc.SetHeader), for calling links without a server.
type benchStream struct{}

func (benchStream) Method() string               { return "/embedgate.v1.EmbedTokenService/GenerateEmbedToken" }
func (benchStream) SetHeader(metadata.MD) error  { return nil }
func (benchStream) SendHeader(metadata.MD) error { return nil }
func (benchStream) SetTrailer(metadata.MD) error { return nil }

// BenchmarkCallRecord is the price of the call record, per call, in
// process: "record" is callLogger writing it (jsonlog, to io.Discard) from
// the fields of a cached GenerateEmbedToken; "interceptor" is the same
// record through go-grpc-middleware's logging interceptor, as the chain
// runs it, with the fields joining through logging.AddFields as the handler
// adds them. The difference is what the library's reporter costs; it is a
// floor of the hot path (see BenchmarkCachedThroughput) that Embedgate's
// own code cannot lower.
func BenchmarkCallRecord(b *testing.B) {
	logger := slog.New(jsonlog.New(io.Discard, nil))
	ctx := grpc.NewContextWithServerTransportStream(context.Background(), benchStream{})
	ctx, _ = requestID(ctx)
	const id = "97e82adc-2606-423f-a630-75c97f52a4c5"
	b.Run("record", func(b *testing.B) {
		log := callLogger(logger)
		b.ReportAllocs()
		for b.Loop() {
			log.Log(ctx, logging.LevelInfo, "finished call",
				"grpc.code", "OK", "caller", testCaller, "tenant", "acme", "token_id", id, "pbi_request_id", id)
		}
	})
	b.Run("interceptor", func(b *testing.B) {
		ic := logging.UnaryServerInterceptor(callLogger(logger), callLogOptions...)
		info := &grpc.UnaryServerInfo{FullMethod: benchStream{}.Method()}
		handler := func(ctx context.Context, _ any) (any, error) {
			logging.AddFields(ctx, logging.Fields{"caller", testCaller}) // auth
			logging.AddFields(ctx, logging.Fields{"tenant", "acme", "token_id", id, "pbi_request_id", id})
			return nil, nil
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ic(ctx, nil, info, handler); err != nil {
				b.Fatal(err)
			}
		}
	})
}
