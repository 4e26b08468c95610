package server_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/embedgate/embedgate/emulator"
	"github.com/embedgate/embedgate/internal/testkit"
)

// TestPowerBIRestartHeals: Power BI restarts under load and forgets every
// token it issued; Embedgate's cached Entra token is refused (401). Calls
// succeed again within seconds, with a fresh Entra token, and the refusal
// costs one sign-in, not one per request.
func TestPowerBIRestartHeals(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	if _, err := s.client.GenerateEmbedToken(context.Background(), newGrant(-1)); err != nil {
		t.Fatal(err)
	}
	var next atomic.Int64
	var lastOK atomic.Int64 // unix nanos of the latest success
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := s.client.GenerateEmbedToken(ctx, newGrant(int(next.Add(1))))
				cancel()
				if err == nil {
					lastOK.Store(time.Now().UnixNano())
				} else if c := status.Code(err); c != codes.Unavailable && c != codes.FailedPrecondition {
					t.Errorf("during the restart: %v", err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	s.restartEmulator(t)
	restarted := time.Now()
	testkit.Eventually(t, "calls to succeed again after the restart", func() bool {
		return lastOK.Load() > restarted.Add(100*time.Millisecond).UnixNano()
	})
	healed := time.Since(restarted)
	close(stop)
	wg.Wait()
	if healed > 5*time.Second {
		t.Errorf("calls succeeded again only %v after the restart", healed)
	}
	n := s.emu.Counters()[emulator.RouteEntraToken]
	if n > 2 {
		t.Errorf("%d Entra sign-ins after the restart, want one (or two)", n)
	}
	t.Logf("Power BI restarted under load: calls succeed again %v later, after %d Entra sign-in(s)", healed.Round(time.Millisecond), n)
}

// TestReadinessFollowsPowerBIRefusals: when Power BI refuses Embedgate's
// token, freshly renewed too, the process turns unready with the cause
// (no tenant can be served); when Power BI takes it again, ready again.
// A refusal by one workspace alone does not touch readiness.
func TestReadinessFollowsPowerBIRefusals(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{metrics: true})
	ready := func() (bool, string) {
		code, body := get(t, s.adminURL+"/readyz")
		return code == http.StatusOK, body
	}
	testkit.Eventually(t, "ready", func() bool { ok, _ := ready(); return ok })

	// One workspace refuses: the tenant's problem, not the process's.
	s.emu.SetAnswer(emulator.RouteGenerateToken, emulator.Answer{Status: 401, Times: 2,
		Body: []byte(`{"error":{"code":"PowerBINotAuthorizedException","pbi.error":{"code":"PowerBINotAuthorizedException"}}}`)})
	checks := s.emu.Counters()[emulator.RouteGetGroups]
	_, err := s.client.GenerateEmbedToken(context.Background(), newGrant(1))
	checkDetails(t, err, "POWERBI_NOT_AUTHORIZED", "")
	testkit.Eventually(t, "the check the refusal asked for", func() bool { return s.emu.Counters()[emulator.RouteGetGroups] > checks })
	time.Sleep(200 * time.Millisecond) // its answer read and published
	if ok, body := ready(); !ok {
		t.Fatalf("one workspace's refusal made the process unready: %s", body)
	}

	// Power BI refuses the token itself, every time.
	refuse := emulator.Answer{Status: 401, Body: []byte(`{"error":{"code":"PowerBINotAuthorizedException","pbi.error":{"code":"PowerBINotAuthorizedException"}}}`)}
	s.emu.SetAnswer(emulator.RouteGetGroups, refuse)
	s.emu.SetAnswer(emulator.RouteGenerateToken, refuse)
	_, _ = s.client.GenerateEmbedToken(context.Background(), newGrant(2))
	testkit.Eventually(t, "unready while Power BI refuses the token", func() bool {
		ok, body := ready()
		return !ok && strings.Contains(body, "Power BI refuses Embedgate's token")
	})
	s.emu.ClearAnswers()
	_, _ = s.client.GenerateEmbedToken(context.Background(), newGrant(3))
	testkit.Eventually(t, "ready again once Power BI takes the token", func() bool { ok, _ := ready(); return ok })
}
