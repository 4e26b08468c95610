package powerbi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// ReportsAsUser reads reports with a user's access token (Reports - Get
// Report In Group; Get Report, for My workspace when workspaceID is ""),
// so that the user's own rights decide and the embed URLs are the ones
// Power BI gives that user. Nothing is cached: what one user may see says
// nothing of another. A refusal is a *UserAccessError (ErrUserNotAllowed,
// or ErrNotFound); a throttled or failing Power BI is reported as for any
// call. The items come back in the order of ids.
func (cl *Client) ReportsAsUser(ctx context.Context, accessToken, workspaceID string, ids []string) ([]Embedded, error) {
	return fanOut(ctx, cl.fanOutLimit(), len(ids), func(ctx context.Context, i int) (Embedded, error) {
		u := cl.cfg.apiURL + "/v1.0/myorg/reports/" + url.PathEscape(ids[i])
		if workspaceID != "" {
			u = cl.groupURL(workspaceID, "reports", ids[i])
		}
		var m reportMeta
		if err := cl.getAsUser(ctx, "GetReport", u, accessToken, &m); err != nil {
			return Embedded{}, err
		}
		e := Embedded{Kind: KindReport, ID: ids[i], Name: m.Name, EmbedURL: m.EmbedURL, WorkspaceID: workspaceID, DatasetID: m.DatasetID}
		if m.paginated() {
			e.DatasetID = ""
		}
		return e, nil
	})
}

// getAsUser GETs u with a user's token, retrying what a GET may retry (up
// to twice), and decodes the answer into v. A 401, 403 or 404 is the
// user's: a *UserAccessError.
func (cl *Client) getAsUser(ctx context.Context, op, u, accessToken string, v any) error {
	c := call{op: op, method: http.MethodGet, url: u, retries: 2}
	for attempt := 0; ; attempt++ {
		resp, err := cl.once(ctx, c, accessToken)
		if err == nil {
			if err := json.Unmarshal(resp.body, v); err != nil {
				return fmt.Errorf("powerbi: %s: malformed response (RequestId %s): %w", op, resp.requestID, err)
			}
			return nil
		}
		var ae *APIError
		if errors.As(err, &ae) && (ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden || ae.Status == http.StatusNotFound) {
			return &UserAccessError{API: ae}
		}
		if attempt >= c.retries || !retryable(c.method, err) || ctx.Err() != nil {
			return err
		}
		if err := sleepCtx(ctx, cl.backoff(attempt+1)); err != nil {
			return fmt.Errorf("powerbi: %s: %w", op, err)
		}
	}
}

// sleepCtx waits d, or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
