package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Faults are the misbehaviours the emulator injects. The zero value injects
// nothing. Set them in Config.Faults, with [Server.SetFaults], or with
// PUT /_emulator/faults (JSON, durations as Go duration strings such as
// "250ms"; a PUT replaces every field).
//
// "Every" knobs are deterministic: with ThrottleEvery 3, the 3rd, 6th, 9th...
// Power BI call since the faults were last set is throttled. "Rate" knobs
// pick a random share (0..1) of calls. On one call the checks run in this
// order: latency, dropped connection, 429, 5xx.
type Faults struct {
	// EntraLatency delays every Entra route (discovery, OIDC, keys, token).
	EntraLatency time.Duration `json:"entra_latency"`
	// PowerBILatency delays every Power BI route.
	PowerBILatency time.Duration `json:"powerbi_latency"`

	// ThrottleEvery answers every Nth Power BI call with 429.
	ThrottleEvery int `json:"throttle_every"`
	// ThrottleRate answers this share of Power BI calls with 429.
	ThrottleRate float64 `json:"throttle_rate"`
	// RetryAfterSeconds is the Retry-After header of a 429 (0 means 1).
	RetryAfterSeconds int `json:"retry_after_seconds"`

	// ServerErrorEvery answers every Nth Power BI call with a 5xx.
	ServerErrorEvery int `json:"server_error_every"`
	// ServerErrorRate answers this share of Power BI calls with a 5xx.
	ServerErrorRate float64 `json:"server_error_rate"`
	// EntraServerErrorEvery answers every Nth Entra token call with a 5xx.
	EntraServerErrorEvery int `json:"entra_server_error_every"`
	// EntraServerErrorRate answers this share of Entra token calls with a 5xx.
	EntraServerErrorRate float64 `json:"entra_server_error_rate"`
	// ServerErrorStatus is the status of injected 5xx (0 means 503).
	ServerErrorStatus int `json:"server_error_status"`

	// DropEvery closes the connection without a response on every Nth
	// Power BI call.
	DropEvery int `json:"drop_every"`
	// DropRate drops this share of Power BI calls.
	DropRate float64 `json:"drop_rate"`
	// EntraDropEvery drops every Nth Entra token call.
	EntraDropEvery int `json:"entra_drop_every"`
	// EntraDropRate drops this share of Entra token calls.
	EntraDropRate float64 `json:"entra_drop_rate"`

	// TokenLifetime is the lifetime of Entra access tokens issued from now
	// on (0 means the default, 3599s). Under 5 minutes, MSAL never caches.
	TokenLifetime time.Duration `json:"token_lifetime"`
	// RandomTokenLifetime gives each Entra access token a random lifetime
	// of 60 to 90 minutes (whole seconds), as Entra does by default ("Access
	// tokens", learn.microsoft.com/entra/identity-platform/access-tokens:
	// "a random value ranging between 60-90 minutes"). It cannot be
	// combined with TokenLifetime.
	RandomTokenLifetime bool `json:"random_token_lifetime"`

	// TrialExhausted makes every embed-token call fail with 403 (the trial
	// embed-token quota is used up) and availableFeatures report usage 100.
	TrialExhausted bool `json:"trial_exhausted"`
	// TrialUsage is the embedTrial usage percentage reported while the
	// quota is not exhausted (0..100).
	TrialUsage int `json:"trial_usage"`
}

// defaultTokenLifetime is the Entra access-token lifetime when
// Faults.TokenLifetime is 0.
const defaultTokenLifetime = 3599 * time.Second

// Validate reports every out-of-range field. SetFaults does not call it:
// there, negative counts mean off and rates are clamped to 0..1.
func (f Faults) Validate() error {
	var errs []error
	for name, d := range map[string]time.Duration{"entra_latency": f.EntraLatency, "powerbi_latency": f.PowerBILatency, "token_lifetime": f.TokenLifetime} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s: negative duration %s", name, d))
		}
	}
	if f.TokenLifetime != 0 && f.TokenLifetime < time.Second {
		errs = append(errs, fmt.Errorf("token_lifetime: %s is under 1s", f.TokenLifetime))
	}
	if f.TokenLifetime != 0 && f.RandomTokenLifetime {
		errs = append(errs, errors.New("random_token_lifetime: cannot be combined with token_lifetime"))
	}
	for name, n := range map[string]int{"throttle_every": f.ThrottleEvery, "server_error_every": f.ServerErrorEvery, "entra_server_error_every": f.EntraServerErrorEvery, "drop_every": f.DropEvery, "entra_drop_every": f.EntraDropEvery, "retry_after_seconds": f.RetryAfterSeconds} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s: negative", name))
		}
	}
	for name, r := range map[string]float64{"throttle_rate": f.ThrottleRate, "server_error_rate": f.ServerErrorRate, "entra_server_error_rate": f.EntraServerErrorRate, "drop_rate": f.DropRate, "entra_drop_rate": f.EntraDropRate} {
		if r < 0 || r > 1 {
			errs = append(errs, fmt.Errorf("%s: %v is outside 0..1", name, r))
		}
	}
	if f.ServerErrorStatus != 0 && (f.ServerErrorStatus < 500 || f.ServerErrorStatus > 599) {
		errs = append(errs, fmt.Errorf("server_error_status: %d is not a 5xx", f.ServerErrorStatus))
	}
	if f.TrialUsage < 0 || f.TrialUsage > 100 {
		errs = append(errs, fmt.Errorf("trial_usage: %d is outside 0..100", f.TrialUsage))
	}
	return errors.Join(errs...)
}

// MarshalJSON writes durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	type plain Faults
	return json.Marshal(struct {
		plain
		EntraLatency   string `json:"entra_latency"`
		PowerBILatency string `json:"powerbi_latency"`
		TokenLifetime  string `json:"token_lifetime"`
	}{plain(f), f.EntraLatency.String(), f.PowerBILatency.String(), f.TokenLifetime.String()})
}

// UnmarshalJSON reads durations as Go duration strings (or integer
// nanoseconds) and rejects unknown keys.
func (f *Faults) UnmarshalJSON(b []byte) error {
	type plain Faults
	aux := struct {
		*plain
		EntraLatency   jsonDuration `json:"entra_latency"`
		PowerBILatency jsonDuration `json:"powerbi_latency"`
		TokenLifetime  jsonDuration `json:"token_lifetime"`
	}{plain: (*plain)(f)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return err
	}
	f.EntraLatency = time.Duration(aux.EntraLatency)
	f.PowerBILatency = time.Duration(aux.PowerBILatency)
	f.TokenLifetime = time.Duration(aux.TokenLifetime)
	return nil
}

type jsonDuration time.Duration

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = jsonDuration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration must be a string like \"250ms\" or integer nanoseconds")
	}
	*d = jsonDuration(n)
	return nil
}

// faultAction is what the fault engine decided for one call.
type faultAction int

const (
	faultNone faultAction = iota
	faultDrop
	faultThrottle
	faultServerError
)

// faultState holds the current faults and the call sequence they count.
type faultState struct {
	mu         sync.Mutex
	f          Faults
	pbiCalls   int
	entraCalls int
}

func (s *faultState) get() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f
}

// set replaces the faults and restarts the "every Nth" sequences.
func (s *faultState) set(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.f = f
	s.pbiCalls, s.entraCalls = 0, 0
}

// decidePowerBI counts one Power BI call and picks its fault.
func (s *faultState) decidePowerBI() (time.Duration, faultAction, Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pbiCalls++
	f := s.f
	switch {
	case hit(s.pbiCalls, f.DropEvery, f.DropRate):
		return f.PowerBILatency, faultDrop, f
	case hit(s.pbiCalls, f.ThrottleEvery, f.ThrottleRate):
		return f.PowerBILatency, faultThrottle, f
	case hit(s.pbiCalls, f.ServerErrorEvery, f.ServerErrorRate):
		return f.PowerBILatency, faultServerError, f
	}
	return f.PowerBILatency, faultNone, f
}

// decideEntra picks the fault of an Entra call; only token calls (counted)
// can be dropped or fail.
func (s *faultState) decideEntra(tokenCall bool) (time.Duration, faultAction, Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.f
	if !tokenCall {
		return f.EntraLatency, faultNone, f
	}
	s.entraCalls++
	switch {
	case hit(s.entraCalls, f.EntraDropEvery, f.EntraDropRate):
		return f.EntraLatency, faultDrop, f
	case hit(s.entraCalls, f.EntraServerErrorEvery, f.EntraServerErrorRate):
		return f.EntraLatency, faultServerError, f
	}
	return f.EntraLatency, faultNone, f
}

func hit(n, every int, rate float64) bool {
	if every > 0 && n%every == 0 {
		return true
	}
	return rate > 0 && rand.Float64() < rate
}

func (f Faults) retryAfter() int {
	if f.RetryAfterSeconds <= 0 {
		return 1
	}
	return f.RetryAfterSeconds
}

func (f Faults) serverErrorStatus() int {
	if f.ServerErrorStatus < 500 || f.ServerErrorStatus > 599 {
		return 503
	}
	return f.ServerErrorStatus
}

// Entra's default access-token lifetimes, when RandomTokenLifetime is set.
const (
	minRandomLifetime = 60 * time.Minute
	maxRandomLifetime = 90 * time.Minute
)

func (f Faults) tokenLifetime() time.Duration {
	switch {
	case f.TokenLifetime > 0:
		return f.TokenLifetime
	case f.RandomTokenLifetime:
		spread := int64((maxRandomLifetime - minRandomLifetime) / time.Second)
		return minRandomLifetime + time.Duration(rand.Int64N(spread+1))*time.Second
	}
	return defaultTokenLifetime
}
