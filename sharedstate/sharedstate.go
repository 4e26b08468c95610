// Package sharedstate is the state the replicas of an Embedgate fleet share
// through Redis or Valkey, so that N replicas behave as one: the embed-token
// cache (a grant minted once across the fleet, its token encrypted at rest)
// and the per-caller rate limits. It exists apart from powerbi and server so
// that each of them declares the small interface it needs (powerbi's
// SharedTokens, server's fleet limiter) and neither knows Redis.
//
// Redis is an optimisation, never a dependency: every operation is bounded
// by a short timeout; a failure is the caller's cue to do the work per
// process (ErrUnavailable); and after a few failures in a row a circuit
// breaker stops asking at all, so that a dead Redis costs a call nothing,
// until a probe finds it answering again. Each change is logged once (a
// warning when Redis stops answering) and reported to the Observer.
//
// Nothing here logs or returns a token, a password or a key, and no Redis
// key holds a user, a tenant or an item in clear (see names).
package sharedstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ErrUnavailable says Redis did not answer in time (or is taken for down):
// the caller does the work per process.
var ErrUnavailable = errors.New("sharedstate: Redis unavailable")

// Observer receives what the store does, for metrics. Its methods must be
// cheap and safe for concurrent use.
type Observer interface {
	// Up reports whether Redis answers: at Open, then at every change.
	Up(up bool)
	// Error counts a Redis command that failed or timed out, by operation
	// (token_claim, token_store, lease_renew, lease_release, rate_limit, ping).
	Error(op string)
	// Token counts the outcome of a fleet-wide token lookup: hit (another
	// replica's token), miss (none: this replica mints under the lease),
	// unreadable (an entry this replica cannot open: minted and replaced),
	// gave_up (another replica held the lease too long: minted without it).
	Token(result string)
	// LeaseWait counts lookups that found another replica minting the
	// grant and waited for its token.
	LeaseWait()
	// Fallback counts work done per process because Redis did not answer,
	// by operation (token, rate_limit).
	Fallback(op string)
}

// Store is the connection to Redis with its breaker. It is safe for
// concurrent use; open one per process.
type Store struct {
	cfg  Config
	rdb  *redis.Client
	ring atomic.Pointer[keyring] // replaced when its file changes (files.go)
	brk  *breaker
	obs  Observer
	log  *slog.Logger
	// leases renewing in the background, waited for by Close.
	leases sync.WaitGroup
	// the key file's watch, stopped and waited for by Close.
	stopWatch context.CancelFunc
	watch     sync.WaitGroup
}

// redisLogOnce routes go-redis' own log lines (a global) into the first
// store's logger at debug level, instead of unstructured lines on stderr.
var redisLogOnce sync.Once

// Open builds the store from cfg (which must be Enabled) and asks Redis
// once whether it answers. An unreachable Redis is not an error: the
// store starts down, logs a warning, and probes until it answers. Open
// fails only on a config it cannot use. obs may be nil.
func Open(ctx context.Context, cfg Config, log *slog.Logger, obs Observer) (*Store, error) {
	if !cfg.Enabled() {
		return nil, errors.New("sharedstate: no address")
	}
	if ps := cfg.Validate(); len(ps) > 0 {
		return nil, fmt.Errorf("sharedstate: shared_state.%s", ps[0])
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if obs == nil {
		obs = nopObserver{}
	}
	ring, err := loadKeyring(cfg.EncryptionKeyFile)
	if err != nil {
		return nil, fmt.Errorf("sharedstate: encryption_key_file: %w", err)
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("sharedstate: tls: %w", err)
	}
	redisLogOnce.Do(func() { redis.SetLogger(redisLogger{log.With("component", "redis")}) })
	s := &Store{cfg: cfg, obs: obs, log: log}
	s.ring.Store(ring)
	s.rdb = redis.NewClient(&redis.Options{
		Addr:                       cfg.Address,
		CredentialsProviderContext: s.credentials, // the password file, read at each new connection
		DB:                         cfg.Database,
		TLSConfig:                  tlsCfg,
		// RESP2 and no CLIENT SETINFO or maintenance notifications: the
		// handshake any Redis or Valkey since 6 accepts.
		Protocol:                 2,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		DialTimeout:              cfg.Timeout,
		DialerRetries:            1,
		ReadTimeout:              cfg.Timeout,
		WriteTimeout:             cfg.Timeout,
		PoolTimeout:              cfg.Timeout,
		ContextTimeoutEnabled:    true,
		// No retries: a command that timed out may have run (a rate-limit
		// token spent), and the caller has its answer per process anyway.
		MaxRetries: -1,
	})
	s.brk = newBreaker(s.ping, s.changed)
	var watchCtx context.Context
	watchCtx, s.stopWatch = context.WithCancel(context.Background())
	s.watch.Add(1)
	go s.watchKeys(watchCtx)
	if err := s.ping(ctx); err != nil {
		s.obs.Error("ping")
		s.brk.trip(err)
	} else {
		s.obs.Up(true)
		log.Info("shared state: Redis answers; the token cache and rate limits are shared by the fleet", "address", cfg.Address)
	}
	return s, nil
}

// Close stops the probe, the lease renewals and the key file's watch, and
// closes the connections.
func (s *Store) Close() error {
	s.stopWatch()
	s.watch.Wait()
	s.brk.close()
	s.leases.Wait()
	return s.rdb.Close()
}

// Up reports whether Redis is taken to answer (the breaker is closed).
func (s *Store) Up() bool { return s.brk.allow() }

// changed logs a transition of the breaker and reports it.
func (s *Store) changed(up bool, cause error) {
	s.obs.Up(up)
	if up {
		s.log.Info("shared state: Redis answers again; the token cache and rate limits are shared by the fleet again", "address", s.cfg.Address)
		return
	}
	s.log.Warn("shared state: Redis does not answer; each replica caches tokens and limits rates by itself until it does",
		"address", s.cfg.Address, "error", cause.Error())
}

// ping asks Redis whether it answers, within the timeout.
func (s *Store) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	return s.rdb.Ping(ctx).Err()
}

// do runs one Redis operation through the breaker, bounded by the
// timeout: ErrUnavailable at once while the breaker is open; a failure
// that is Redis' (not the caller's leaving) counts toward opening it.
// redis.Nil is an answer.
func (s *Store) do(ctx context.Context, op string, f func(ctx context.Context) error) error {
	if !s.brk.allow() {
		return ErrUnavailable
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	err := f(cctx)
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		s.brk.succeeded()
		return err
	case ctx.Err() != nil: // the caller left: no news about Redis
		return fmt.Errorf("sharedstate: %s: %w", op, ctx.Err())
	}
	s.obs.Error(op)
	s.brk.failed(err)
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, op, err)
}

// redisLogger writes go-redis' log lines at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...))
}

type nopObserver struct{}

func (nopObserver) Up(bool)         {}
func (nopObserver) Error(string)    {}
func (nopObserver) Token(string)    {}
func (nopObserver) LeaseWait()      {}
func (nopObserver) Fallback(string) {}

// Check asks Redis for what the replicas will need, for `embedgate check
// --online`: that it answers (TLS, AUTH and SELECT included), and that it
// runs Embedgate's scripts on keys under the prefix (a lease release that
// finds nothing to release, so nothing is written), which an ACL without
// scripting or without the prefix's keys refuses.
func (s *Store) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 4*s.cfg.Timeout)
	defer cancel()
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return err
	}
	return releaseScript.Run(ctx, s.rdb, []string{s.cfg.KeyPrefix + "lease:{check}"}, leaseID()).Err()
}
