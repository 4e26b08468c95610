package server_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

// rawCodec sends the bytes it is given as the message, whatever they are:
// what a buggy or hostile client puts on the wire.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// wire builds a GenerateEmbedTokenRequest by hand.
type wire []byte

func (w wire) str(num protowire.Number, s string) wire {
	return protowire.AppendString(protowire.AppendTag(w, num, protowire.BytesType), s)
}

func (w wire) msg(num protowire.Number, m wire) wire {
	return protowire.AppendBytes(protowire.AppendTag(w, num, protowire.BytesType), m)
}

func (w wire) varint(num protowire.Number, v uint64) wire {
	return protowire.AppendVarint(protowire.AppendTag(w, num, protowire.VarintType), v)
}

// TestMalformedRequestsAreInvalidArgument: bytes that are not a valid
// request (grpc-go alone answers INTERNAL "failed to unmarshal", with no
// details, no call record and no metric) are INVALID_ARGUMENT with the
// field at fault, logged and counted, and mint nothing; a caller without an
// identity still gets UNAUTHENTICATED first.
func TestMalformedRequestsAreInvalidArgument(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{metrics: true})
	good := wire(nil).str(1, "acme").str(2, "alice@acme.example").str(3, salesReport)
	negNanos := wire(nil).varint(1, 60).varint(2, uint64(0xFFFFFFFFFFFFFFFF)) // 60 s and -1 ns: signs differ
	tooManyNanos := wire(nil).varint(1, 600).varint(2, 1_000_000_000)
	tests := []struct {
		name      string
		body      []byte
		wantField string
	}{
		{"invalid UTF-8 in a string", wire(nil).str(1, "acme").str(2, "alice\xff@acme.example").str(3, salesReport), "user"},
		{"truncated wire data", good[:len(good)-3], ""},
		{"a length beyond the message", append(wire(nil).str(1, "acme"), 0x12, 0x7f, 'a'), ""},
		{"a Duration whose nanos have the wrong sign", good.msg(5, negNanos), "lifetime"},
		{"a Duration with a second's worth of nanos", good.msg(5, tooManyNanos), "lifetime"},
	}
	conn := s.dial(t, s.clientCert(t, frontend))
	anonymous := s.dial(t, s.clientCert(t))
	method := "/" + embedgatev1.EmbedTokenService_ServiceDesc.ServiceName + "/GenerateEmbedToken"
	before := s.emu.Counters()[emulator.RouteGenerateToken]
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reply []byte
			err := conn.Invoke(context.Background(), method, &tc.body, &reply, grpc.ForceCodecV2(rawCodec{}))
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("got %v, want InvalidArgument", err)
			}
			checkDetails(t, err, "INVALID_REQUEST", tc.wantField)
			err = anonymous.Invoke(context.Background(), method, &tc.body, &reply, grpc.ForceCodecV2(rawCodec{}))
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("without an identity: got %v, want Unauthenticated", err)
			}
		})
	}
	if n := s.emu.Counters()[emulator.RouteGenerateToken]; n != before {
		t.Errorf("%d tokens minted for malformed requests", n-before)
	}
	// A valid request that carries the codec's marker fields itself is a
	// valid request: no caller writes the words of an INVALID_ARGUMENT.
	forged := []byte(good.str(protowire.MaxValidNumber, "attacker's words\nINFO a forged line").str(protowire.MaxValidNumber-1, "user"))
	var reply []byte
	if err := conn.Invoke(context.Background(), method, &forged, &reply, grpc.ForceCodecV2(rawCodec{})); err != nil {
		t.Errorf("a valid request with the marker fields: %v", err)
	}
	if strings.Contains(s.logs.String(), "attacker") {
		t.Error("the forged marker's words reached the log")
	}
	if n := strings.Count(s.logs.String(), `"code":"InvalidArgument"`); n != len(tests) {
		t.Errorf("%d call records with code InvalidArgument, want %d", n, len(tests))
	}
	if m := s.scrape(t); !strings.Contains(m, `grpc_code="InvalidArgument",grpc_method="GenerateEmbedToken"`) {
		t.Error("the metrics count no InvalidArgument for GenerateEmbedToken")
	}
}
