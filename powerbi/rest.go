package powerbi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// defaultRetryAfter is used when a 429 has no usable Retry-After.
	defaultRetryAfter = 30 * time.Second
	// maxBody caps what is read from a Power BI response.
	maxBody = 8 << 20
	// headerProfileID selects a service principal profile (multitenancy).
	headerProfileID = "X-PowerBI-Profile-Id"
	// headerErrorInfo names the cause of some refusals.
	headerErrorInfo = "X-PowerBI-Error-Info"
)

// call describes one Power BI REST operation.
type call struct {
	op        string // GetReport, GetDataset, GenerateToken, ...
	method    string
	url       string
	body      []byte
	profileID string
	retries   int // extra attempts allowed for retryable failures
	// need is how long the Entra token must outlive the call: an embed
	// token's lifetime plus mintMargin for a mint, 0 otherwise.
	need time.Duration
	// mints marks a token generation, whose 403 may be the trial quota.
	mints bool
}

// response is a 2xx answer.
type response struct {
	body      []byte
	requestID string
}

// do runs c with the service principal's token, retrying what is safe to
// retry (see retryable) and, once, a refusal of the token (401 or 403) with a
// freshly acquired one: Power BI may have forgotten a token it issued (a
// restart), or the principal's access changed since the token was issued. A
// 403 that survives a fresh token is the trial quota or a missing permission;
// do tells them apart for mints.
func (cl *Client) do(ctx context.Context, c call) (*response, error) {
	tok, err := cl.entraToken(ctx, c.need)
	if err != nil {
		return nil, err
	}
	renewed := false
	for attempt := 0; ; {
		resp, err := cl.once(ctx, c, tok.value)
		if err == nil {
			return resp, nil
		}
		var ae *APIError
		if errors.As(err, &ae) && ae.refusesToken() {
			if !renewed {
				renewed = true
				fresh, ok, ferr := cl.renewAfterRefusal(ctx, tok)
				if ferr != nil {
					return nil, ferr
				}
				if ok && fresh.value != tok.value {
					cl.log.Info("powerbi: retrying with a fresh Entra token after a refusal", "op", c.op, "status", ae.Status, "code", ae.Code, "pbi_request_id", ae.RequestID)
					tok = fresh
					continue
				}
			}
			if c.mints && ae.Status == http.StatusForbidden && !ae.tokenExpired() {
				ae.Quota = ae.quotaMessage() || cl.trialExhausted(ctx, c.profileID)
			}
			return nil, err
		}
		if attempt >= c.retries || !retryable(c.method, err) || ctx.Err() != nil {
			return nil, err
		}
		attempt++
		t := time.NewTimer(cl.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("powerbi: %s: %w", c.op, ctx.Err())
		case <-t.C:
		}
		cl.log.Debug("powerbi: retrying", "op", c.op, "attempt", attempt+1, "pbi_request_id", RequestIDOf(err))
	}
}

// trialExhausted asks Power BI whether the principal's embed trial tokens are
// used up (availableFeatures(featureName='embedTrial') reports usage as a
// percentage; Move to production): the one documented way to tell the quota's
// 403 from the others, asked only after a mint was refused with 403.
func (cl *Client) trialExhausted(ctx context.Context, profileID string) bool {
	usage, err := cl.TrialUsage(ctx, profileID)
	if err != nil {
		cl.log.Warn("powerbi: could not read the embed trial usage to classify a 403", "error", err)
		return false
	}
	return usage >= 100
}

// once makes one HTTP attempt and maps any failure to a typed error.
func (cl *Client) once(ctx context.Context, c call, tok string) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, cl.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(withOp(actx, c.op), c.method, c.url, body)
	if err != nil {
		return nil, fmt.Errorf("powerbi: %s: %w", c.op, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if c.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.profileID != "" {
		req.Header.Set(headerProfileID, c.profileID)
	}
	start := time.Now()
	res, err := cl.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("powerbi: %s: %w", c.op, ctx.Err())
		}
		if errors.Is(err, ErrOverloaded) {
			cl.log.Warn("powerbi: request shed: too many in flight upstream", "op", c.op)
			return nil, fmt.Errorf("powerbi: %s: %w", c.op, ErrOverloaded)
		}
		cl.log.Warn("powerbi: upstream call failed", "op", c.op, "error", err, "duration", time.Since(start).String())
		return nil, &UnavailableError{Op: c.op, Err: err}
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	rid := res.Header.Get("RequestId")
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("powerbi: %s: %w", c.op, ctx.Err())
		}
		return nil, &UnavailableError{Op: c.op, Status: res.StatusCode, RequestID: rid, Err: err}
	}
	if res.StatusCode/100 == 2 {
		cl.log.Debug("powerbi: upstream call", "op", c.op, "status", res.StatusCode, "pbi_request_id", rid, "duration", time.Since(start).String())
		return &response{body: data, requestID: rid}, nil
	}
	if res.StatusCode == http.StatusTooManyRequests {
		ra := parseRetryAfter(res.Header.Get("Retry-After"), cl.now())
		cl.log.Warn("powerbi: throttled", "op", c.op, "status", res.StatusCode, "pbi_request_id", rid, "retry_after", ra)
		return nil, &ThrottledError{Op: c.op, RetryAfter: ra, RequestID: rid}
	}
	ae := parseAPIError(c.op, res.StatusCode, rid, data)
	ae.ErrorInfo = res.Header.Get(headerErrorInfo)
	// Only the parsed code and message are logged: error bodies never hold
	// tokens, but we do not log raw upstream bodies at all.
	cl.log.Warn("powerbi: upstream error", "op", c.op, "status", res.StatusCode, "pbi_request_id", rid,
		"code", ae.Code, "message", ae.Message, "error_info", ae.ErrorInfo, "duration", time.Since(start).String())
	if res.StatusCode >= 500 {
		return nil, &UnavailableError{Op: c.op, Status: res.StatusCode, RequestID: rid, Err: ae}
	}
	return nil, ae
}

// retryable: 502/503/504 for every method; for GETs also network errors and
// timeouts; for POSTs only a connection reset/closed before any response (the
// request was not processed, or minting twice is harmless).
func retryable(method string, err error) bool {
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		return false
	}
	switch ue.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	case 0:
		if method == http.MethodGet {
			return true
		}
		return errors.Is(ue.Err, syscall.ECONNRESET) || errors.Is(ue.Err, io.EOF) || errors.Is(ue.Err, io.ErrUnexpectedEOF)
	}
	return false
}

// pbiError covers both Power BI error shapes:
// {"error":{"code","message"}} and {"error":{"code","pbi.error":{"code",...}}}.
type pbiError struct {
	Error struct {
		Code     string `json:"code"`
		Message  string `json:"message"`
		PBIError *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details []struct {
				Code   string `json:"code"`
				Detail struct {
					Value string `json:"value"`
				} `json:"detail"`
			} `json:"details"`
		} `json:"pbi.error"`
	} `json:"error"`
}

func parseAPIError(op string, status int, rid string, body []byte) *APIError {
	ae := &APIError{Op: op, Status: status, RequestID: rid}
	var pe pbiError
	if json.Unmarshal(body, &pe) != nil {
		return ae
	}
	ae.Code, ae.Message = pe.Error.Code, pe.Error.Message
	if p := pe.Error.PBIError; p != nil {
		if ae.Code == "" {
			ae.Code = p.Code
		}
		if ae.Message == "" {
			ae.Message = p.Message
		}
		if ae.Message == "" {
			for _, d := range p.Details {
				if d.Detail.Value != "" {
					ae.Message = d.Detail.Value
					break
				}
			}
		}
	}
	return ae
}

// parseRetryAfter reads delay-seconds or an HTTP-date; anything else (or
// nothing) gives defaultRetryAfter. A date in the past gives one second.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return defaultRetryAfter
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return defaultRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now).Round(time.Second)
		if d < time.Second {
			d = time.Second
		}
		return d
	}
	return defaultRetryAfter
}

// jitteredBackoff waits 100ms, 200ms, ... (doubling), each jittered to
// [50%, 100%], so that retries of many requests spread out.
func jitteredBackoff(attempt int) time.Duration {
	d := 100 * time.Millisecond << (attempt - 1)
	return d/2 + rand.N(d/2+1)
}
