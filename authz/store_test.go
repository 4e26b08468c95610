package authz

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// waitTimeout bounds every wait on a reload; tests never sleep.
const waitTimeout = 10 * time.Second

const (
	policyV1 = tenantYAML
	policyV2 = `
callers:
  - {id: "spiffe://mesh.example/a", tenants: [acme]}
` + tenantYAML
	policyV3 = `
callers:
  - {id: "spiffe://mesh.example/b", tenants: [acme]}
` + tenantYAML
	policyBad = `
callers:
  - {id: "not-spiffe", tenants: [nowhere]}
` + tenantYAML
)

// recordingHandler hands every log record to the test, so that a rejected reload can be
// waited for instead of slept on.
type recordingHandler struct{ records chan slog.Record }

func (h recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h recordingHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.records <- r.Clone():
	default: // never block the store; tests read far fewer records than the buffer
	}
	return nil
}

// newTestStore writes policy to dir/policy.yaml and opens a Store on it.
func newTestStore(t *testing.T, policy string) (*Store, string, chan slog.Record) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policy)
	records := make(chan slog.Record, 256)
	s, err := NewStore(path, slog.New(recordingHandler{records}))
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s, path, records
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// watch runs s.Watch until the test ends, and checks it returns cleanly.
func watch(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Error("Watch did not return after cancel")
		}
	})
}

// waitVersion waits for the subscription to report want.
func waitVersion(t *testing.T, ch <-chan string, want string) {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case got := <-ch:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("no reload to %s within %v", want, waitTimeout)
		}
	}
}

// waitRejection waits for the log record of a rejected reload and returns its problems.
func waitRejection(t *testing.T, records <-chan slog.Record) []string {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case r := <-records:
			var problems []string
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "problems" {
					problems, _ = a.Value.Any().([]string)
				}
				return true
			})
			if problems != nil {
				return problems
			}
		case <-deadline:
			t.Fatalf("no rejected reload logged within %v", waitTimeout)
		}
	}
}

func TestNewStoreFailsWithoutAValidPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, policyBad)
	if _, err := NewStore(bad, nil); !errors.As(err, new(*ValidationError)) {
		t.Errorf("NewStore(invalid) error = %v, want a *ValidationError", err)
	}
	if _, err := NewStore(filepath.Join(dir, "missing.yaml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NewStore(missing) error = %v, want os.ErrNotExist", err)
	}
}

func TestStoreReload(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		edit    func(t *testing.T, path string)
		wantErr bool
		// want is the content whose version must be active after the reload.
		want string
	}{
		{"valid edit is applied", func(t *testing.T, p string) { writeFile(t, p, policyV2) }, false, policyV2},
		{"unchanged file is a no-op", func(t *testing.T, p string) { writeFile(t, p, policyV1) }, false, policyV1},
		{"invalid edit keeps the old policy", func(t *testing.T, p string) { writeFile(t, p, policyBad) }, true, policyV1},
		{"empty file keeps the old policy", func(t *testing.T, p string) { writeFile(t, p, "") }, true, policyV1},
		{"removed file keeps the old policy", func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, true, policyV1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, path, _ := newTestStore(t, policyV1)
			tt.edit(t, path)
			if err := s.Reload(); (err != nil) != tt.wantErr {
				t.Fatalf("Reload() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got, want := s.Current().Version(), version([]byte(tt.want)); got != want {
				t.Errorf("Current().Version() = %s, want %s", got, want)
			}
		})
	}
}

func TestStoreReloadRejectionIsLoggedWithEveryProblem(t *testing.T) {
	t.Parallel()
	s, path, records := newTestStore(t, policyV1)
	writeFile(t, path, policyBad)
	err := s.Reload()
	if !errors.As(err, new(*ValidationError)) {
		t.Fatalf("Reload() error = %v, want a *ValidationError", err)
	}
	problems := waitRejection(t, records)
	want := []string{
		`callers[0].id: "not-spiffe" is not a valid SPIFFE ID: scheme is missing or invalid`,
		`callers[0].tenants[0]: tenant "nowhere" is not defined under tenants`,
	}
	if !slices.Equal(problems, want) {
		t.Errorf("logged problems = %q, want %q", problems, want)
	}
	// File events for the same rejected bytes are not logged again.
	if err := s.reload(false); err != nil {
		t.Errorf("reload(false) of already rejected bytes = %v, want nil", err)
	}
	select {
	case r := <-records:
		t.Errorf("unexpected log record for unchanged bytes: %s", r.Message)
	default:
	}
}

// TestStoreWatch covers the ways a file is replaced in production.
func TestStoreWatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		edit func(t *testing.T, path string, content string)
	}{
		{"plain write", func(t *testing.T, path, content string) { writeFile(t, path, content) }},
		{"editor rename-over", func(t *testing.T, path, content string) {
			tmp := path + ".swp"
			writeFile(t, tmp, content)
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, path, records := newTestStore(t, policyV1)
			versions := s.Subscribe()
			watch(t, s)

			tt.edit(t, path, policyV2)
			waitVersion(t, versions, version([]byte(policyV2)))

			// A bad edit is logged with its problems; the good policy keeps serving.
			tt.edit(t, path, policyBad)
			if problems := waitRejection(t, records); len(problems) != 2 {
				t.Errorf("logged problems = %q, want 2", problems)
			}
			if got, want := s.Current().Version(), version([]byte(policyV2)); got != want {
				t.Errorf("after a bad edit Current().Version() = %s, want %s", got, want)
			}

			// The next good edit is applied.
			tt.edit(t, path, policyV3)
			waitVersion(t, versions, version([]byte(policyV3)))
			if got, want := s.Current().Version(), version([]byte(policyV3)); got != want {
				t.Errorf("Current().Version() = %s, want %s", got, want)
			}
		})
	}
}

// TestStoreWatchConfigMap replays how the kubelet updates a mounted ConfigMap: the
// file is a symlink through `..data`, and an update atomically renames a new `..data`
// symlink over the old one, pointing at a new timestamped directory.
func TestStoreWatchConfigMap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	publish := func(stamp, content string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, stamp), 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, stamp, "policy.yaml"), content)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(stamp, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	publish("..2026_11_28_10_00_00.000000001", policyV1)
	path := filepath.Join(dir, "policy.yaml")
	if err := os.Symlink(filepath.Join("..data", "policy.yaml"), path); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	versions := s.Subscribe()
	watch(t, s)

	publish("..2026_11_28_10_05_00.000000002", policyV2)
	if err := os.RemoveAll(filepath.Join(dir, "..2026_11_28_10_00_00.000000001")); err != nil {
		t.Fatal(err)
	}
	waitVersion(t, versions, version([]byte(policyV2)))

	publish("..2026_11_28_10_10_00.000000003", policyV3)
	waitVersion(t, versions, version([]byte(policyV3)))
	if got, want := s.Current().Version(), version([]byte(policyV3)); got != want {
		t.Errorf("Current().Version() = %s, want %s", got, want)
	}
}

func TestStoreWatchStopsOnCancel(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestStore(t, policyV1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Watch(ctx); err != nil {
		t.Errorf("Watch(cancelled) = %v, want nil", err)
	}
}

// TestStoreWatchBusyNeighbour: another file in the policy's folder written every
// 20ms (an audit log, a sidecar's scratch file) does not delay a policy edit: it
// applies within a second.
func TestStoreWatchBusyNeighbour(t *testing.T) {
	t.Parallel()
	s, path, _ := newTestStore(t, policyV1)
	versions := s.Subscribe()
	watch(t, s)
	stop, busy := make(chan struct{}), make(chan struct{})
	defer close(stop)
	go func() {
		f, err := os.OpenFile(filepath.Join(filepath.Dir(path), "audit.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			close(busy)
			return
		}
		defer f.Close()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			if i == 10 {
				close(busy) // the neighbour has been busy for 200ms
			}
			select {
			case <-stop:
				return
			case <-tick.C:
				_, _ = f.WriteString(`{"msg":"embed decision"}` + "\n")
			}
		}
	}()
	<-busy
	edited := time.Now()
	writeFile(t, path, policyV2)
	waitVersion(t, versions, version([]byte(policyV2)))
	if d := time.Since(edited); d > time.Second {
		t.Errorf("the edit applied after %v, want within 1s", d)
	}
}
