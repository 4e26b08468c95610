package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/embedgate/embedgate/sharedstate"
)

// SharedRates enforces the callers' rate limits across the replicas of a
// fleet (sharedstate.Store): Take returns 0 to admit, the wait to refuse,
// or an error when it cannot decide, and this process's bucket decides
// instead.
type SharedRates interface {
	Take(ctx context.Context, caller string, perSecond float64, burst int) (time.Duration, error)
}

// openSharedState opens the fleet's shared state when the config has a
// shared_state block (nil, nil when it has none). A Redis that does not
// answer is not an error: the store starts down and comes up by itself.
func openSharedState(ctx context.Context, cfg *Config, logger *slog.Logger, m *Metrics) (*sharedstate.Store, error) {
	if !cfg.SharedState.Enabled() {
		return nil, nil
	}
	var obs sharedstate.Observer
	if m != nil {
		obs = m.sharedState()
	}
	s, err := sharedstate.Open(ctx, cfg.SharedState, logger.With("component", "shared_state"), obs)
	if err != nil {
		return nil, fmt.Errorf("shared_state: %w", err)
	}
	return s, nil
}

// checkSharedState is check --online's finding about shared state: none
// when Redis answers and runs the scripts.
func checkSharedState(ctx context.Context, c sharedstate.Config) []Finding {
	s, err := sharedstate.Open(ctx, c, nil, nil)
	if err == nil {
		defer s.Close()
		err = s.Check(ctx)
	}
	if err == nil {
		return nil
	}
	return []Finding{{Subject: "shared state", Message: fmt.Sprintf("Redis at %s cannot be used (%v): until it can, each replica caches tokens and limits callers' rates by itself", c.Address, err)}}
}

// sharedStateSummary is `embedgate check`'s line about shared state.
func sharedStateSummary(c sharedstate.Config) string {
	if !c.Enabled() {
		return "off: each replica caches tokens and limits callers' rates by itself"
	}
	transport := "plaintext"
	if c.TLS.Enabled {
		transport = "TLS"
	}
	prefix := c.KeyPrefix
	if prefix == "" {
		prefix = sharedstate.DefaultKeyPrefix
	}
	return fmt.Sprintf("Redis at %s (%s, database %d, keys %s*): embed tokens (encrypted) and rate limits shared by the fleet", c.Address, transport, c.Database, prefix)
}

// sharedStateMetrics are the shared state's series; they exist only when
// shared_state is configured.
type sharedStateMetrics struct {
	up        prometheus.Gauge
	errors    *prometheus.CounterVec
	tokens    *prometheus.CounterVec
	waits     prometheus.Counter
	fallbacks *prometheus.CounterVec
}

// sharedState registers the shared state's metrics and returns them as
// the store's Observer.
func (m *Metrics) sharedState() sharedstate.Observer {
	s := &sharedStateMetrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "embedgate_shared_state_up",
			Help: "1 while Redis (shared_state) answers, 0 while it does not and each replica caches tokens and limits rates by itself.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedgate_shared_state_errors_total",
			Help: "Redis commands that failed or timed out, by operation (token_claim, token_store, lease_renew, lease_release, rate_limit, ping).",
		}, []string{"op"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedgate_shared_state_tokens_total",
			Help: "Fleet-wide lookups of an embed token this replica did not have, by result: hit (another replica's token), miss (this replica minted it under the lease), unreadable (an entry it could not decrypt: minted and replaced), gave_up (another replica minted for too long: minted without the lease).",
		}, []string{"result"}),
		waits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "embedgate_shared_state_lease_waits_total",
			Help: "Lookups that found another replica minting the same grant and waited for its token.",
		}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "embedgate_shared_state_fallbacks_total",
			Help: "Work done per process because Redis did not answer, by operation: token (cached and minted by this replica alone), rate_limit (this replica's bucket decided).",
		}, []string{"op"}),
	}
	for _, op := range []string{"token_claim", "token_store", "lease_renew", "lease_release", "rate_limit", "ping"} {
		s.errors.WithLabelValues(op)
	}
	for _, r := range []string{"hit", "miss", "unreadable", "gave_up"} {
		s.tokens.WithLabelValues(r)
	}
	for _, op := range []string{"token", "rate_limit"} {
		s.fallbacks.WithLabelValues(op)
	}
	m.registry.MustRegister(s.up, s.errors, s.tokens, s.waits, s.fallbacks)
	return s
}

func (s *sharedStateMetrics) Up(up bool) {
	if up {
		s.up.Set(1)
	} else {
		s.up.Set(0)
	}
}

func (s *sharedStateMetrics) Error(op string)     { s.errors.WithLabelValues(op).Inc() }
func (s *sharedStateMetrics) Token(result string) { s.tokens.WithLabelValues(result).Inc() }
func (s *sharedStateMetrics) LeaseWait()          { s.waits.Inc() }
func (s *sharedStateMetrics) Fallback(op string)  { s.fallbacks.WithLabelValues(op).Inc() }
