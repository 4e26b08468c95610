package emulator

import (
	"net/http"
	"sync"
)

// Shared capacity and the embed trial. A workspace not on a dedicated
// capacity (Embedded, Premium or Fabric) gets "a limited amount of embed
// tokens, to allow experimenting with the APIs" (Available Features, the
// Usage field, learn.microsoft.com/rest/api/power-bi/available-features);
// Microsoft discloses no number (github.com/MicrosoftDocs/powerbi-docs/issues/4934).
// The emulator counts every token minted for a shared-capacity workspace
// against the calling principal (the app, or its profile) and refuses
// more than its tenant's TrialTokenLimit.

// DefaultTrialTokenLimit is the trial limit of a tenant that sets none.
// [unk] the real limit.
const DefaultTrialTokenLimit = 100

// errTrialExhausted is the 403 once the trial tokens are used up. The
// message is the cause the troubleshooting page gives ("Troubleshoot REST
// API", learn.microsoft.com/power-bi/developer/embedded/troubleshoot-rest-api);
// [unk] the code and the exact text.
var errTrialExhausted = &apiError{status: http.StatusForbidden, code: "TokenGenerationQuotaExceeded",
	message: "The user has exceeded the amount of embed token that can be generated on a shared capacity. Purchase Azure capacities to generate embed tokens and assign the workspace to that capacity."}

// shared reports whether the workspace is on shared capacity.
func (ws *Workspace) shared() bool { return ws.Capacity == CapacityShared }

// trialLimit is the tenant's limit of trial tokens per principal.
func (t *Tenant) trialLimit() int {
	if t.TrialTokenLimit > 0 {
		return t.TrialTokenLimit
	}
	return DefaultTrialTokenLimit
}

// trialCounter counts the trial tokens each principal minted.
type trialCounter struct {
	mu   sync.Mutex
	used map[string]int
}

// take spends one of the principal's tokens, or reports that none is
// left.
func (tc *trialCounter) take(principal string, limit int) bool {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.used == nil {
		tc.used = map[string]int{}
	}
	if tc.used[principal] >= limit {
		return false
	}
	tc.used[principal]++
	return true
}

func (tc *trialCounter) get(principal string) int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.used[principal]
}

// spendTrialToken is the last check before a token is minted: with
// Faults.TrialExhausted nothing is minted; a token touching a workspace on
// shared capacity spends one of the caller's trial tokens.
func (s *Server) spendTrialToken(c *caller, touched []requirement) *apiError {
	if s.faults.get().TrialExhausted {
		return errTrialExhausted
	}
	for _, rq := range touched {
		if rq.ws.shared() {
			if !s.trial.take(c.principal, c.tenant.trialLimit()) {
				return errTrialExhausted
			}
			return nil
		}
	}
	return nil
}

// trialUsage is the caller's embedTrial usage in percent, as
// availableFeatures reports it: its own count against the limit, raised
// to Faults.TrialUsage, and 100 with Faults.TrialExhausted.
func (s *Server) trialUsage(c *caller) int {
	f := s.faults.get()
	if f.TrialExhausted {
		return 100
	}
	usage := min(100, s.trial.get(c.principal)*100/c.tenant.trialLimit())
	return max(usage, f.TrialUsage)
}
