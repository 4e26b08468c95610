package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/testkit"
)

// simClock is the simulated time the emulator (Entra's token expiry, Power
// BI's embed-token expiry) and the gateway (Entra token age, token cache)
// share in these tests: it starts now and moves only when the test moves it.
func simClock() *testkit.Clock { return testkit.NewClock(time.Now()) }

func entraCalls(emu *emulator.Server) int64 { return emu.Counters()[emulator.RouteEntraToken] }

// TestLifetimeHoldsAsTheEntraTokenAges: Power BI caps an embed token at the
// remaining life of the Entra token that mints it. Asking for 30 minutes
// after that token has aged 40 minutes still gets 30 minutes, at the cost of
// one Entra call; asking again costs none.
func TestLifetimeHoldsAsTheEntraTokenAges(t *testing.T) {
	t.Parallel()
	clock := simClock()
	s := startStack(t, stackOptions{now: clock.Now}) // Entra tokens live 3599 s
	ask := func(user string) time.Duration {
		t.Helper()
		resp, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{
			Tenant: "acme", User: user, ReportIds: []string{salesReport}, Lifetime: durationpb.New(30 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetExpireTime().AsTime().Sub(clock.Now())
	}
	if got := ask("alice"); got < 29*time.Minute {
		t.Fatalf("first token lives %v, want 30m", got)
	}
	before := entraCalls(s.emu)
	clock.Advance(40 * time.Minute) // the Entra token has 20 minutes left
	if got := ask("bob"); got < 29*time.Minute {
		t.Errorf("after the Entra token aged 40m, a 30m token lives %v: its lifetime eroded", got)
	}
	if got := entraCalls(s.emu) - before; got != 1 {
		t.Errorf("Entra token calls = %d, want exactly 1 renewal", got)
	}
	if got := ask("carol"); got < 29*time.Minute || entraCalls(s.emu)-before != 1 {
		t.Errorf("next token lives %v after %d Entra calls, want 30m and no new call", got, entraCalls(s.emu)-before)
	}
}

// TestShortEntraTokensCauseNoStorm: when Entra issues tokens shorter than
// MSAL's 5-minute margin (MSAL never caches them), the gateway still uses
// each for its life: a steady stream of requests costs about one Entra call
// per token life, not one per request, and refresh_time is always after the
// issue time.
func TestShortEntraTokensCauseNoStorm(t *testing.T) {
	t.Parallel()
	clock := simClock()
	s := startStack(t, stackOptions{now: clock.Now, faults: emulator.Faults{TokenLifetime: 4 * time.Minute}})
	// The server's first sign-in done, the counts that follow are the
	// requests' own.
	testkit.Eventually(t, "the server's first sign-in", func() bool { return entraCalls(s.emu) > 0 })
	before := entraCalls(s.emu)
	const requests, every = 80, 15 * time.Second // 20 minutes of traffic
	for i := range requests {
		clock.Advance(every)
		resp, err := s.client.GenerateEmbedToken(context.Background(), &embedgatev1.GenerateEmbedTokenRequest{
			Tenant: "acme", User: fmt.Sprintf("user%d", i), ReportIds: []string{salesReport}, Lifetime: durationpb.New(30 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		issued, refresh, expire := clock.Now(), resp.GetRefreshTime().AsTime(), resp.GetExpireTime().AsTime()
		if !refresh.After(issued.Add(-time.Second)) || !refresh.Before(expire) {
			t.Fatalf("request %d: refresh_time %v is not between the issue time %v and expire_time %v", i, refresh, issued, expire)
		}
	}
	// Each 4-minute token serves until it has a minute left: one call per
	// 3 minutes of simulated time, 7 over 20 minutes; never 80.
	if got := entraCalls(s.emu) - before; got > 8 {
		t.Errorf("Entra token calls = %d for %d requests over %v, want about one per token life (<= 8)", got, requests, requests*every)
	}
}

// TestMicrosoftRefreshGuidance plays the JavaScript client guidance for two
// hours of simulated time: check every 30 s, and ask for a new token when 10
// minutes or less remain. Every token it gets has more than 10 minutes
// left (the lifetime allows it): never the one it already holds, never one
// it would have to renew at once. Entra tokens live a random 60 to 90
// minutes, as Entra's do, so the gateway renews them along the way.
func TestMicrosoftRefreshGuidance(t *testing.T) {
	t.Parallel()
	for _, lifetime := range []time.Duration{30 * time.Minute, 60 * time.Minute} {
		t.Run(lifetime.String(), func(t *testing.T) {
			t.Parallel()
			clock := simClock()
			s := startStack(t, stackOptions{now: clock.Now, faults: emulator.Faults{RandomTokenLifetime: true}})
			req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: []string{salesReport}, Lifetime: durationpb.New(lifetime)}
			var expire time.Time
			asked, fresh := 0, 0
			for elapsed := time.Duration(0); elapsed <= 2*time.Hour; elapsed += 30 * time.Second {
				if !expire.IsZero() && expire.Sub(clock.Now()) > 10*time.Minute {
					clock.Advance(30 * time.Second)
					continue
				}
				resp, err := s.client.GenerateEmbedToken(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				asked++
				got := resp.GetExpireTime().AsTime()
				if left := got.Sub(clock.Now()); left <= 10*time.Minute {
					t.Fatalf("after %v the client got a token with %v left", elapsed, left.Round(time.Second))
				}
				if !got.Equal(expire) {
					fresh++
				}
				expire = got
				clock.Advance(30 * time.Second)
			}
			if fresh != asked {
				t.Errorf("%d of %d answers were the token the client already held", asked-fresh, asked)
			}
			if asked < 2 {
				t.Errorf("the client asked %d times in two hours", asked)
			}
		})
	}
}
