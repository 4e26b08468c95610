package server

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/embedgate/embedgate/authz"
	"github.com/embedgate/embedgate/internal/jsonlog"
)

// TestAuditAttrsStayOutOfThePoolDuringARecord: an audit record's pooled
// attribute list goes back to the pool only once the record is written, so
// no other record can be built in it meanwhile. (A list put back too early
// is the one the pool hands out next on the same P, as in more here.)
func TestAuditAttrsStayOutOfThePoolDuringARecord(t *testing.T) {
	a := &auditor{log: slog.New(jsonlog.New(io.Discard, nil))}
	r := authz.Request{Caller: testCaller, Tenant: "acme", User: "alice", Items: authz.Reports("a1000000-0000-4000-8000-000000000001")}
	for range 10 {
		a.record(context.Background(), r, outcomeAllowed, statusOK, func(attrs []slog.Attr) []slog.Attr {
			other := attrPool.Get().(*[]slog.Attr)
			defer attrPool.Put(other)
			if cap(*other) > 0 && &(*other)[:1][0] == &attrs[:1][0] {
				t.Fatal("the record's attribute list was handed out while in use")
			}
			return attrs
		})
	}
}
