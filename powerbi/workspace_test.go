package powerbi

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/embedgate/embedgate/emulator"
)

func TestWorkspace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name    string
		profile string
		id      string
		want    WorkspaceInfo
	}{
		{"a member, dedicated capacity", "", testWS, WorkspaceInfo{ID: testWS, Name: "Sales", Member: true, DedicatedCapacity: true}},
		{"a Viewer is a member too", "", viewWS, WorkspaceInfo{ID: viewWS, Name: "Board", Member: true, DedicatedCapacity: true}},
		{"shared capacity", "", trialWS, WorkspaceInfo{ID: trialWS, Name: "Trial", Member: true}},
		{"no role in it", "", "00000000-0000-4000-8000-0000000000ee", WorkspaceInfo{ID: "00000000-0000-4000-8000-0000000000ee"}},
		{"the profile's own", testProfile, testWS2, WorkspaceInfo{ID: testWS2, Name: "Europe", Member: true, DedicatedCapacity: true}},
		{"not the profile's", testProfile, trialWS, WorkspaceInfo{ID: trialWS}},
	}
	for _, tt := range tests {
		got, err := e.c.Workspace(context.Background(), tt.profile, tt.id)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	// One Get Groups each, filtered to the workspace by Power BI.
	calls := e.emu.Requests(emulator.RouteGetGroups)
	if len(calls) != len(tests) {
		t.Fatalf("Get Groups calls = %d, want %d", len(calls), len(tests))
	}
	if got, want := calls[0].Query.Get("$filter"), "id eq '"+testWS+"'"; got != want {
		t.Errorf("$filter = %q, want %q", got, want)
	}
}

func TestReportIDsAndTrialUsage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	ids, err := e.c.ReportIDs(ctx, "", testWS2)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{repWS2, repWS2RDL}, ids); diff != "" {
		t.Errorf("reports (-want +got):\n%s", diff)
	}
	if _, err := e.c.ReportIDs(ctx, "", "00000000-0000-4000-8000-0000000000ee"); !errors.Is(err, ErrNotAuthorized) {
		t.Errorf("ReportIDs of a workspace without a role in it: err = %v, want ErrNotAuthorized", err)
	}
	// One of the two trial tokens spent: half the trial is used.
	if _, err := e.c.Issue(ctx, TokenRequest{Items: reports(trialWS, repTrial)}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.c.TrialUsage(ctx, ""); err != nil || got != 50 {
		t.Errorf("TrialUsage = %d, %v; want 50", got, err)
	}
	if got, err := e.c.TrialUsage(ctx, testProfile); err != nil || got != 0 {
		t.Errorf("TrialUsage of the profile = %d, %v; want 0 (its own trial)", got, err)
	}
}
