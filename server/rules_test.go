package server

import (
	"sync/atomic"
	"testing"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	validatepb "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/embedgate/embedgate/authz"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

// TestRequestRulesAgree reads the API's protovalidate rules through
// protoreflect and checks them against the policy's domain rules (authz),
// so that the two cannot drift: a request the interceptor lets through is
// one Decide would not call malformed, and the other way round.
func TestRequestRulesAgree(t *testing.T) {
	t.Parallel()
	rules := func(m proto.Message, field protoreflect.Name) *validatepb.FieldRules {
		t.Helper()
		fd := m.ProtoReflect().Descriptor().Fields().ByName(field)
		if fd == nil {
			t.Fatalf("%T has no field %s", m, field)
		}
		r, _ := proto.GetExtension(fd.Options(), validatepb.E_Field).(*validatepb.FieldRules)
		if r == nil {
			t.Fatalf("%T.%s has no buf.validate rules", m, field)
		}
		return r
	}
	for _, m := range []proto.Message{&embedgatev1.GenerateEmbedTokenRequest{}, &embedgatev1.GenerateDashboardEmbedTokenRequest{}} {
		name := string(m.ProtoReflect().Descriptor().Name())
		tenant := rules(m, "tenant").GetString()
		if tenant.GetPattern() != authz.TenantKeyPattern.String() || tenant.GetMinLen() != 1 || tenant.GetMaxLen() != 63 {
			t.Errorf("%s.tenant: pattern %q, length %d..%d; the policy's tenant keys are %q (1..63)",
				name, tenant.GetPattern(), tenant.GetMinLen(), tenant.GetMaxLen(), authz.TenantKeyPattern)
		}
		user := rules(m, "user").GetString()
		if user.GetPattern() != authz.UserPattern.String() || user.GetMinLen() != 1 || user.GetMaxLen() != authz.MaxUsernameLength {
			t.Errorf("%s.user: pattern %q, length %d..%d; authz wants %q, 1..%d",
				name, user.GetPattern(), user.GetMinLen(), user.GetMaxLen(), authz.UserPattern, authz.MaxUsernameLength)
		}
		life := rules(m, "lifetime").GetDuration()
		if life.GetGte().AsDuration() != authz.MinLifetime || life.GetLte().AsDuration() != authz.MaxLifetime {
			t.Errorf("%s.lifetime: %v..%v; authz allows %v..%v", name, life.GetGte().AsDuration(), life.GetLte().AsDuration(), authz.MinLifetime, authz.MaxLifetime)
		}
	}
	for _, m := range []proto.Message{&embedgatev1.GenerateEmbedTokenRequest{}, &embedgatev1.GenerateUserEmbedConfigRequest{}} {
		reports := rules(m, "report_ids")
		rep := reports.GetRepeated()
		if rep.GetMinItems() != 1 || rep.GetMaxItems() != authz.MaxReportIDs || !rep.GetItems().GetString().GetUuid() {
			t.Errorf("%T.report_ids: %d..%d items, uuid %v; authz wants 1..%d uuids", m, rep.GetMinItems(), rep.GetMaxItems(), rep.GetItems().GetString().GetUuid(), authz.MaxReportIDs)
		}
		// Uniqueness ignores case in both: a case-sensitive `unique` would let
		// through what Decide refuses.
		if rep.GetUnique() || len(reports.GetCel()) != 1 || reports.GetCel()[0].GetExpression() != "size(this) < 2 || this.map(id, id.lowerAscii()).unique()" {
			t.Errorf("%T.report_ids: unique %v, CEL %v; want uniqueness ignoring case, as authz", m, rep.GetUnique(), reports.GetCel())
		}
	}
	if !rules(&embedgatev1.GenerateUserEmbedConfigRequest{}, "workspace_id").GetString().GetUuid() {
		t.Errorf("GenerateUserEmbedConfigRequest.workspace_id: authz wants a uuid")
	}
	dash := rules(&embedgatev1.GenerateDashboardEmbedTokenRequest{}, "dashboard_id").GetString()
	tile := rules(&embedgatev1.GenerateDashboardEmbedTokenRequest{}, "tile_id").GetString()
	if !dash.GetUuid() || !tile.GetUuid() {
		t.Errorf("dashboard_id uuid %v, tile_id uuid %v; authz wants uuids", dash.GetUuid(), tile.GetUuid())
	}
}

// countingValidator counts the rule evaluations it makes.
type countingValidator struct {
	protovalidate.Validator
	n atomic.Int64
}

func (c *countingValidator) Validate(m proto.Message, opts ...protovalidate.ValidationOption) error {
	c.n.Add(1)
	return c.Validator.Validate(m, opts...)
}

// TestValidatorKeepsOnlyPasses: a request seen valid is not evaluated again;
// an invalid one is evaluated (and refused) every time.
func TestValidatorKeepsOnlyPasses(t *testing.T) {
	t.Parallel()
	pv, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	cv := &countingValidator{Validator: pv}
	val := newValidator(cv)
	good := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{"a1000000-0000-4000-8000-000000000001"}}
	bad := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice", ReportIds: []string{"a1000000-0000-4000-8000-000000000001", "A1000000-0000-4000-8000-000000000001"}}
	for range 3 {
		if err := val.validate(good); err != nil {
			t.Fatal(err)
		}
		if err := val.validate(bad); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("a repeated id differing in case: %v, want InvalidArgument", err)
		}
	}
	if got := cv.n.Load(); got != 1+3 {
		t.Errorf("evaluations = %d, want 1 for the valid request and 3 for the invalid one", got)
	}
}
