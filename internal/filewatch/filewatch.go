// Package filewatch tells Embedgate when one of the files it was configured with
// changes (the policy, the TLS certificate, key and client CAs, the Entra
// credential, shared state's encryption keys), so that each is reloaded
// without a restart, by one mechanism.
//
// It watches the files' directories, not the files: a Kubernetes ConfigMap or
// Secret volume swaps a `..data` symlink, and editors rename a new file over the
// old one; both replace the inode a file watch would follow. Events are
// filtered to the watched names (and Kubernetes' `..`-prefixed entries), so a
// busy neighbour in the same directory (an audit log, a sidecar's scratch file)
// wakes nothing. A burst of events is reported once, after Quiet without a
// relevant event, and never later than MaxWait after the burst began, so that a
// file written continuously cannot postpone a reload forever.
package filewatch

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Defaults of Options.
const (
	// DefaultQuiet is how long the files must be still before a change is
	// reported: an editor's save or a ConfigMap swap is a burst of events, and a
	// plain write is a truncate followed by writes.
	DefaultQuiet = 100 * time.Millisecond
	// DefaultMaxWait bounds how long a burst may postpone the report.
	DefaultMaxWait = time.Second
)

// Options tune Watch; the zero value uses the defaults.
type Options struct {
	// Quiet is DefaultQuiet when zero.
	Quiet time.Duration
	// MaxWait is DefaultMaxWait when zero.
	MaxWait time.Duration
	// OnError, if set, is told about watcher errors (an event queue overflow, for
	// example). A change is reported after each, since events may have been lost.
	OnError func(error)
}

// Watch calls changed (from Watch's goroutine, never concurrently) after one or
// more of files changed, until ctx is done; then it returns nil. It also calls
// changed once as soon as the watch is in place, since the files may have
// changed before it was. It returns an error if the directories cannot be
// watched. Callers read the files again in changed, ignore content they already
// have, and keep what they had if the new content is bad.
func Watch(ctx context.Context, files []string, changed func(), o Options) error {
	if o.Quiet <= 0 {
		o.Quiet = DefaultQuiet
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("filewatch: %w", err)
	}
	defer w.Close()
	names := map[string]map[string]bool{} // dir -> base names watched in it
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return fmt.Errorf("filewatch: %w", err)
		}
		dir, base := filepath.Split(abs)
		dir = filepath.Clean(dir)
		if names[dir] == nil {
			names[dir] = map[string]bool{}
			if err := w.Add(dir); err != nil {
				return fmt.Errorf("filewatch: watch %s: %w", dir, err)
			}
		}
		names[dir][base] = true
	}
	changed()
	relevant := func(ev fsnotify.Event) bool {
		dir, base := filepath.Split(ev.Name)
		return names[filepath.Clean(dir)][base] || strings.HasPrefix(base, "..")
	}

	quiet := time.NewTimer(o.Quiet)
	quiet.Stop()
	defer quiet.Stop()
	var deadline <-chan time.Time // set while a burst is pending
	pending := false
	note := func() {
		if !pending {
			pending = true
			deadline = time.After(o.MaxWait)
		}
		quiet.Reset(o.Quiet)
	}
	fire := func() {
		pending, deadline = false, nil
		quiet.Stop()
		changed()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("filewatch: watcher closed")
			}
			if relevant(ev) {
				note()
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("filewatch: watcher closed")
			}
			if o.OnError != nil {
				o.OnError(err)
			}
			note()
		case <-quiet.C:
			if pending {
				fire()
			}
		case <-deadline:
			fire()
		}
	}
}
