package authz

import (
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/embedgate/embedgate/internal/testkit"
)

// largePolicy generates a policy with n tenants shaped like a platform's
// (testkit.LargePolicyTenants) and a few callers over all of them. Ten
// thousand tenants make about 6.3 MB of YAML.
func largePolicy(n int) []byte {
	var b strings.Builder
	b.WriteString("callers:\n")
	for c := range 4 {
		fmt.Fprintf(&b, "  - id: spiffe://example.org/ns/apps/sa/frontend-%d\n    tenants: [\"*\"]\n    rate_limit: {per_second: 100, burst: 200}\n", c)
	}
	b.WriteString("  - id: spiffe://example.org/ns/apps/sa/reports\n    tenants: [")
	for t := range min(n, 1000) {
		if t > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "customer-%05d", t)
	}
	b.WriteString("]\ntenants:\n")
	testkit.LargePolicyTenants(&b, n)
	return []byte(b.String())
}

func TestLargePolicy(t *testing.T) {
	t.Parallel()
	data := largePolicy(10_000)
	p, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Tenants()); n != 10_000 {
		t.Fatalf("%d tenants", n)
	}
	t.Logf("%d bytes", len(data))
}

// TestLargePolicyIsReadInPieces: the generated policy, and the same file
// with a layout that must be read whole, give the same policy; only the
// first is read in pieces, and a large file read whole is worth a warning
// (on start and on reload), with the way out.
func TestLargePolicyIsReadInPieces(t *testing.T) {
	t.Parallel()
	data := largePolicy(2_000)
	inPieces, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := Parse(append(slices.Clip(data), "...\n"...)) // a document end marker: left to the parser
	if err != nil {
		t.Fatal(err)
	}
	if !inPieces.readInPieces || whole.readInPieces {
		t.Fatalf("read in pieces: %v and %v, want true and false", inPieces.readInPieces, whole.readInPieces)
	}
	if diff := cmp.Diff(inPieces, whole, cmp.Exporter(func(reflect.Type) bool { return true }),
		cmpopts.IgnoreFields(Policy{}, "version", "readInPieces", "size")); diff != "" {
		t.Errorf("(-in pieces +whole):\n%s", diff)
	}

	for _, tt := range []struct {
		file string
		warn bool
	}{{string(data), false}, {string(data) + "...\n", true}} {
		s, path, records := newTestStore(t, tt.file)
		writeFile(t, path, tt.file+"# edited\n")
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
		warnings := 0
		for len(records) > 0 {
			r := <-records
			if r.Level == slog.LevelWarn && strings.Contains(r.Message, "read as one YAML tree") {
				warnings++
			}
		}
		if want := map[bool]int{true: 2, false: 0}[tt.warn]; warnings != want {
			t.Errorf("read in pieces %v: %d warnings, want %d", !tt.warn, warnings, want)
		}
	}
}

// BenchmarkParseLargePolicy is what a reload of a 10,000-tenant policy costs.
func BenchmarkParseLargePolicy(b *testing.B) {
	data := largePolicy(10_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReloadMemory reports the heap a 10,000-tenant policy holds once
// loaded (policy-MB) and the most the heap grew, garbage not yet collected
// included, while a second copy was parsed beside it (reload-heap-MB),
// sampled every millisecond: a reload's memory cost. What it costs the real
// server, against its own steady state, is TestLargePolicyReload's figure
// (server/largepolicy_test.go).
func BenchmarkReloadMemory(b *testing.B) {
	data := largePolicy(10_000)
	heap := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	for b.Loop() {
		runtime.GC()
		base := heap()
		p, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		steady := heap()
		var peak atomic.Uint64
		done := make(chan struct{})
		go func() {
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				if h := heap(); h > peak.Load() {
					peak.Store(h)
				}
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		}()
		p2, err := Parse(data)
		close(done)
		if err != nil {
			b.Fatal(err)
		}
		runtime.KeepAlive(p)
		runtime.KeepAlive(p2)
		b.ReportMetric(float64(steady-base)/(1<<20), "policy-MB")
		b.ReportMetric(float64(peak.Load()-steady)/(1<<20), "reload-heap-MB")
	}
}

// BenchmarkDecideByPolicySize: a decision costs the same in a policy of ten
// tenants and in one of ten thousand (maps, not scans).
func BenchmarkDecideByPolicySize(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		p, err := Parse(largePolicy(n))
		if err != nil {
			b.Fatal(err)
		}
		r := Request{
			Caller: "spiffe://example.org/ns/apps/sa/frontend-1",
			Tenant: fmt.Sprintf("customer-%05d", n/2),
			User:   "alice@example.com",
			Items:  Reports(fmt.Sprintf("%08x-%04x-4000-8000-%012x", 0xb1, 2, n/2)),
		}
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Decide(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
