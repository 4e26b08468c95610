package authz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ReloadDebounce is how long Watch waits for the file to be quiet before reading it:
// an editor's save or a ConfigMap swap is a burst of events, and a plain write is a
// truncate followed by writes; reading once after the burst avoids half-written files.
const ReloadDebounce = 100 * time.Millisecond

// Store holds the active policy and reloads it when its file changes, so that the
// server reads the current policy with one atomic load per request and a bad edit never
// replaces a good policy.
type Store struct {
	path   string
	logger *slog.Logger
	active atomic.Pointer[Policy]

	mu       sync.Mutex // serializes reloads and guards the fields below
	lastSeen string     // Version of the last bytes read, accepted or not
	subs     []chan string
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
	return s, nil
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
		return fmt.Errorf("read policy: %w", err)
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
		return errors.New("policy file is empty")
	}
	p, err := Parse(data)
	if err != nil {
		var problems []string
		if ve, ok := errors.AsType[*ValidationError](err); ok {
			problems = ve.Strings()
		}
		s.logger.Error("policy rejected; keeping the active policy",
			"path", s.path, "rejected_version", ver, "active_version", active.Version(),
			"problems", problems)
		return fmt.Errorf("%s: %w", s.path, err)
	}
	s.active.Store(p)
	s.logger.Info("policy reloaded", "path", s.path, "version", ver, "previous_version", active.Version())
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
// returns nil). It watches the file's DIRECTORY, not the file: a Kubernetes ConfigMap
// swaps a `..data` symlink, and editors rename a new file over the old one, and both
// replace the inode a file watch would follow. Bursts of events are debounced by
// ReloadDebounce; events that leave the bytes unchanged are ignored.
func (s *Store) Watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch policy: %w", err)
	}
	defer w.Close()
	dir := filepath.Dir(s.path)
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch policy directory %s: %w", dir, err)
	}
	// The file may have changed between NewStore and the watch taking effect.
	_ = s.reload(false)

	timer := time.NewTimer(ReloadDebounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("watch policy: watcher closed")
			}
			s.logger.Debug("policy directory event", "event", ev.String())
			timer.Reset(ReloadDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("watch policy: watcher closed")
			}
			// An overflow may have dropped events: read the file anyway.
			s.logger.Warn("policy watch error", "path", s.path, "error", err)
			timer.Reset(ReloadDebounce)
		case <-timer.C:
			_ = s.reload(false) // logged inside
		}
	}
}
