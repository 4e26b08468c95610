package powerbi

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// SharedTokens is an embed-token cache the replicas of a fleet share
// (sharedstate.Store, which the server passes to WithSharedTokens). The
// Client asks it only on a miss of its own cache, inside the flight that
// identical concurrent requests share: one lookup per grant and refresh
// window, never one per call.
type SharedTokens interface {
	// Claim returns the value another replica stored for grant; or, when
	// none did, a done func to call once this replica has minted (with the
	// value and when the fleet stops handing it out, or a nil value when
	// the mint failed), while no other replica mints the grant; or an
	// error, after which the Client mints by itself. It may wait for
	// another replica's mint until ctx ends.
	Claim(ctx context.Context, grant [32]byte) ([]byte, func(value []byte, until time.Time), error)
}

// WithSharedTokens shares minted tokens with the other replicas through s
// (nil: per process). With DisableTokenCache nothing is shared, and a
// NewAsUser Client (a signed-in user's) ignores it: its tokens are that
// user's alone.
func WithSharedTokens(s SharedTokens) Option { return func(o *options) { o.shared = s } }

// claimShared asks the fleet for k's token. It returns another replica's
// token, or what to do with this replica's outcome: store the token for
// the fleet (releasing the lease) or only release the lease. Whatever
// goes wrong (Redis unavailable, an entry that does not decode, another
// replica minting for longer than Timeout) ends in this replica minting
// by itself, never in an error: the fleet's cache only saves mints.
func (cl *Client) claimShared(ctx context.Context, k grantKey) (*EmbedToken, func(*EmbedToken)) {
	alone := func(*EmbedToken) {}
	wctx, cancel := context.WithTimeout(ctx, cl.cfg.Timeout)
	defer cancel()
	v, done, err := cl.fleet.Claim(wctx, k)
	switch {
	case err != nil:
		return nil, alone
	case done == nil:
		tok, err := decodeShared(v)
		if err != nil || !cl.now().Before(tok.RefreshAt) {
			return nil, alone
		}
		return tok, nil
	}
	return nil, func(tok *EmbedToken) {
		if tok == nil || !cl.now().Before(tok.RefreshAt) {
			done(nil, time.Time{})
			return
		}
		done(encodeShared(tok), tok.RefreshAt)
	}
}

// sharedFormat is the version of sharedToken; an entry of another version
// is not read (the replica mints instead).
const sharedFormat = 1

// sharedToken is an EmbedToken as the fleet stores it (then encrypted by
// the store). Its JSON names are a format between versions of Embedgate
// running side by side: change them only with sharedFormat.
type sharedToken struct {
	Format     int              `json:"v"`
	Token      string           `json:"token"`
	TokenID    string           `json:"token_id"`
	Expiration time.Time        `json:"expiration"`
	RequestID  string           `json:"request_id"`
	Items      []sharedEmbedded `json:"items"`
	Issued     time.Time        `json:"issued"`
	RefreshAt  time.Time        `json:"refresh_at"`
	Requested  time.Duration    `json:"requested"`
}

type sharedEmbedded struct {
	Kind        Kind   `json:"kind"`
	ID          string `json:"id"`
	Name        string `json:"name"`
	EmbedURL    string `json:"embed_url"`
	WorkspaceID string `json:"workspace_id"`
	DatasetID   string `json:"dataset_id,omitempty"`
	ReportID    string `json:"report_id,omitempty"`
	DashboardID string `json:"dashboard_id,omitempty"`
}

func encodeShared(t *EmbedToken) []byte {
	s := sharedToken{Format: sharedFormat, Token: t.Token, TokenID: t.TokenID, Expiration: t.Expiration, RequestID: t.RequestID,
		Issued: t.Issued, RefreshAt: t.RefreshAt, Requested: t.Requested, Items: make([]sharedEmbedded, len(t.Items))}
	for i, it := range t.Items {
		s.Items[i] = sharedEmbedded(it)
	}
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // only strings, times and numbers
	}
	return b
}

var errSharedFormat = errors.New("powerbi: a shared token of another format")

func decodeShared(b []byte) (*EmbedToken, error) {
	var s sharedToken
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	if s.Format != sharedFormat || s.Token == "" {
		return nil, errSharedFormat
	}
	t := &EmbedToken{Token: s.Token, TokenID: s.TokenID, Expiration: s.Expiration, RequestID: s.RequestID,
		Issued: s.Issued, RefreshAt: s.RefreshAt, Requested: s.Requested, Items: make([]Embedded, len(s.Items))}
	for i, it := range s.Items {
		t.Items[i] = Embedded(it)
	}
	return t, nil
}
