package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedgate/embedgate/internal/filewatch"
)

// Store holds the active policy and reloads it when its file changes, so that the
// server reads the current policy with one atomic load per request and a bad edit never
// replaces a good policy.
type Store struct {
	path   string
	logger *slog.Logger
	active atomic.Pointer[Policy]

	mu        sync.Mutex // serializes reloads and guards the fields below
	lastSeen  string     // Version of the last bytes read, accepted or not
	subs      []chan string
	observers []func(version string, err error) // OnReload
}

// NewStore loads the policy at path once; it fails if that first load fails, so the
// server never starts without a valid policy. A nil logger discards logs.
func NewStore(path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p, err := Load(path)
	if err != nil {
		return nil, err
	}
	s := &Store{path: path, logger: logger, lastSeen: p.Version()}
	s.active.Store(p)
	s.warnIfReadWhole(p)
	return s, nil
}

// largeReadWhole is the size from which a policy read as one YAML tree is
// worth a warning: its reloads hold about twenty times that in memory.
const largeReadWhole = 1 << 20

// warnIfReadWhole tells the operator of a large policy that its layout keeps
// it from being read in pieces.
func (s *Store) warnIfReadWhole(p *Policy) {
	if !p.readInPieces && p.size >= largeReadWhole {
		s.logger.Warn("policy file read as one YAML tree: a reload holds about 20 times its size in memory; "+
			"in block style (top-level keys at column 0, one tenant per entry), without anchors shared between tenants, it is read in pieces",
			"path", s.path, "bytes", p.size)
	}
}

// Current returns the active policy; never nil. Hold on to it for one request only.
func (s *Store) Current() *Policy { return s.active.Load() }

// Subscribe returns a channel that receives the new Version after each successful
// swap, so that tests and health reporting can observe reloads without polling. The
// channel holds the latest version only (a slow reader misses intermediate ones, never
// the newest) and lives as long as the Store. Rejected files are not sent: they are
// logged at error level with their problems (key "problems"), which is how tests
// observe them through a recording slog.Handler.
func (s *Store) Subscribe() <-chan string {
	ch := make(chan string, 1)
	s.mu.Lock()
	s.subs = append(s.subs, ch)
	s.mu.Unlock()
	return ch
}

// Reload reads, parses and validates the file and swaps it in. A file identical to the
// active policy is a no-op. A file that fails (unreadable, empty, or invalid) is logged
// with every problem and returned as an error, and the active policy keeps serving.
// An empty file is refused here although Parse accepts it: on reload it is far more
// likely a write caught half-way than an intent to deny everything (write
// `callers: []` for that).
func (s *Store) Reload() error { return s.reload(true) }

// reload is Reload; when force is false (file events), bytes identical to the last
// ones read, accepted or rejected, are ignored without a log line.
func (s *Store) reload(force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	active := s.active.Load()
	data, err := os.ReadFile(s.path)
	if err != nil {
		s.logger.Error("policy reload failed; keeping the active policy",
			"path", s.path, "active_version", active.Version(), "error", err)
		err = fmt.Errorf("read policy: %w", err)
		s.observe("", err)
		return err
	}
	ver := version(data)
	if ver == active.Version() || (!force && ver == s.lastSeen) {
		s.lastSeen = ver
		return nil
	}
	s.lastSeen = ver
	if len(data) == 0 {
		s.logger.Warn("policy file is empty; keeping the active policy",
			"path", s.path, "active_version", active.Version())
		err := errors.New("policy file is empty")
		s.observe(ver, err)
		return err
	}
	start := time.Now()
	p, err := Parse(data)
	if err != nil {
		var problems []string
		if ve, ok := errors.AsType[*ValidationError](err); ok {
			problems = ve.Strings()
		}
		s.logger.Error("policy rejected; keeping the active policy",
			"path", s.path, "rejected_version", ver, "active_version", active.Version(),
			"problems", problems)
		err = fmt.Errorf("%s: %w", s.path, err)
		s.observe(ver, err)
		return err
	}
	s.active.Store(p)
	s.logger.Info("policy reloaded", "path", s.path, "version", ver, "previous_version", active.Version(),
		"parse_seconds", time.Since(start).Seconds(), "read_in_pieces", p.readInPieces)
	s.warnIfReadWhole(p)
	s.observe(ver, nil)
	for _, ch := range s.subs {
		select {
		case <-ch: // drop the stale version; the newest one matters
		default:
		}
		ch <- ver
	}
	return nil
}

// Watch reloads the policy whenever its file changes, until ctx is done (then it
// returns nil), with the one file-watch mechanism of the service (internal/filewatch:
// the file's directory is watched, so ConfigMap symlink swaps and editors' renames
// count; events on other files are ignored; bursts are reported once). Events that
// leave the bytes unchanged are ignored.
func (s *Store) Watch(ctx context.Context) error {
	return filewatch.Watch(ctx, []string{s.path}, func() { _ = s.reload(false) /* logged inside */ }, filewatch.Options{
		OnError: func(err error) {
			s.logger.Warn("policy watch error; reading the file anyway", "path", s.path, "error", err)
		},
	})
}
