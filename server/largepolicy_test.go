package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
	"github.com/embedgate/embedgate/internal/testkit"
)

// TestLargePolicyReload: the real binary, serving a policy of 10,000
// tenants (6 MB) under load, applies an edit of it while every call goes on
// succeeding, and the most memory it holds meanwhile (the kernel's peak RSS,
// reset just before the edit) stays under twice its steady RSS before the
// edit. The reload used to build the YAML tree of the whole file, about 20
// times its size; the reload's log record must say the file was read in
// pieces. It logs the figures the README quotes: the parse's duration, the
// calls served and the slowest call before and during the reload.
func TestLargePolicyReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildCommand(t, dir, "github.com/embedgate/embedgate/cmd/embedgate")
	emu, err := emulator.Start(context.Background(), emulator.Config{})
	must(t, err)
	t.Cleanup(func() { emu.Close() })
	var policy strings.Builder
	policy.WriteString(testPolicy)
	testkit.LargePolicyTenants(&policy, 10_000)
	ca := writeProcessFolder(t, dir, emu.URL(), emu.CACertPEM(), policy.String(), "")
	logFile := filepath.Join(dir, "embedgate.log")
	srv := startProcess(t, dir, "embedgate.log", bin, "serve", "--config", filepath.Join(dir, "config.yaml"))
	s := &stack{ca: ca}
	waitFor(t, "the server", func() bool { a, ok := servingAddr(logFile); s.addr = a; return ok })
	client := embedgatev1.NewEmbedTokenServiceClient(s.dial(t, s.clientCert(t, frontend)))

	// The load: 8 callers asking for a grant the token cache holds, each
	// call's end and duration recorded.
	type call struct {
		end  time.Time
		took time.Duration
	}
	var (
		mu    sync.Mutex
		calls []call
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: []string{salesReport}}
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				_, err := client.GenerateEmbedToken(ctx, req)
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					t.Errorf("a call failed: %v", err)
					return
				}
				mu.Lock()
				calls = append(calls, call{time.Now(), time.Since(start)})
				mu.Unlock()
			}
		})
	}

	// Steady state: the median RSS over a second of load, once it no longer
	// falls (what the start left behind is returned to the system within
	// seconds).
	pid := srv.cmd.Process.Pid
	time.Sleep(2 * time.Second)
	second := func() int {
		var rss []int
		for range 50 {
			rss = append(rss, procStatusKB(t, pid, "VmRSS"))
			time.Sleep(20 * time.Millisecond)
		}
		slices.Sort(rss)
		return rss[len(rss)/2]
	}
	steady := second()
	for range 30 {
		next := second()
		if next*100 >= steady*98 {
			steady = next
			break
		}
		steady = next
	}

	// The edit, written as an operator's tool does (a new file renamed over
	// the old one), with the peak RSS reset just before it.
	must(t, os.WriteFile(filepath.Join(dir, "policy.yaml.new"), []byte(policy.String()+"  # edited\n"), 0o600))
	must(t, os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0o600))
	edited := time.Now()
	must(t, os.Rename(filepath.Join(dir, "policy.yaml.new"), filepath.Join(dir, "policy.yaml")))
	var (
		applied time.Time
		parse   float64
		pieces  bool
		off     int64
		done    bool
	)
	for deadline := time.Now().Add(30 * time.Second); !done; {
		if time.Now().After(deadline) {
			t.Fatal("the edit was not applied within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
		applied, parse, pieces, done = reloadRecord(t, logFile, &off)
	}
	time.Sleep(time.Second) // what the reload left behind, collected or not
	peak := procStatusKB(t, pid, "VmHWM")
	cancel()
	wg.Wait()

	before, during := 0, 0
	var slowBefore, slowDuring time.Duration
	for _, c := range calls {
		switch {
		case c.end.After(edited.Add(-3*time.Second)) && c.end.Before(edited):
			before++
			slowBefore = max(slowBefore, c.took)
		case c.end.After(edited) && c.end.Before(applied):
			during++
			slowDuring = max(slowDuring, c.took)
		}
	}
	window := applied.Sub(edited).Seconds()
	t.Logf("10,000 tenants, %.1f MB of YAML: parsed in %.2f s, applied %.2f s after the edit", float64(len(policy.String()))/(1<<20), parse, window)
	t.Logf("RSS: steady %.1f MB, peak during the reload %.1f MB (%.2fx)", float64(steady)/1024, float64(peak)/1024, float64(peak)/float64(steady))
	t.Logf("calls: %.0f/s before the edit (slowest %v), %.0f/s until it was applied (slowest %v)",
		float64(before)/3, slowBefore.Round(time.Millisecond), float64(during)/window, slowDuring.Round(time.Millisecond))
	if !pieces {
		t.Error("the policy was read as one YAML tree")
	}
	if peak >= 2*steady {
		t.Errorf("peak RSS %d kB during the reload, steady %d kB: want under twice", peak, steady)
	}
	if during == 0 {
		t.Error("no call was answered while the policy was parsed")
	}
}

// procStatusKB reads a field of /proc/PID/status given in kB (VmRSS, VmHWM).
func procStatusKB(t *testing.T, pid int, field string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(t, err)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			var kb int
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb
			}
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// reloadRecord scans the server's log, from *off on, for its "policy
// reloaded" record, and returns when it was written, the parse's duration
// and whether the file was read in pieces.
func reloadRecord(t *testing.T, logFile string, off *int64) (at time.Time, parse float64, inPieces, ok bool) {
	f, err := os.Open(logFile)
	must(t, err)
	defer f.Close()
	_, err = f.Seek(*off, io.SeekStart)
	must(t, err)
	data, err := io.ReadAll(f)
	must(t, err)
	data = data[:bytes.LastIndexByte(data, '\n')+1] // whole lines only
	*off += int64(len(data))
	for line := range bytes.Lines(data) {
		if !bytes.Contains(line, []byte(`"policy reloaded"`)) {
			continue
		}
		var rec struct {
			Time         time.Time
			ParseSeconds float64 `json:"parse_seconds"`
			ReadInPieces bool    `json:"read_in_pieces"`
		}
		must(t, json.Unmarshal(line, &rec))
		return rec.Time, rec.ParseSeconds, rec.ReadInPieces, true
	}
	return time.Time{}, 0, false, false
}
