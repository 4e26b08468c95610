package authz

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// largePolicy generates a policy with n tenants shaped like a platform's: a
// few callers over all of them, each tenant with its workspace, three
// reports, RLS from templates, a dataset's roles, and limits. Ten thousand
// tenants make about 4.6 MB of YAML.
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
	uuid := func(kind, t, i int) string { return fmt.Sprintf("%08x-%04x-4000-8000-%012x", kind, i, t) }
	for t := range n {
		fmt.Fprintf(&b, "  customer-%05d:   # customer %d of %d, onboarded by the platform's provisioning job\n", t, t, n)
		fmt.Fprintf(&b, "    workspace_id: %s\n", uuid(0xa0, t, 0))
		fmt.Fprintf(&b, "    reports: [%s, %s, %s]\n", uuid(0xb1, t, 1), uuid(0xb1, t, 2), uuid(0xb1, t, 3))
		fmt.Fprintf(&b, "    workspaces:\n      - id: %s\n        reports: [%s]\n", uuid(0xa1, t, 0), uuid(0xb2, t, 1))
		b.WriteString("    rls:\n      roles: [Customer, Viewer]\n      username: \"{user}\"\n      custom_data: \"{tenant}/{user}\"\n")
		fmt.Fprintf(&b, "      dataset_roles:\n        %s: [Region, Customer]\n", uuid(0xd1, t, 1))
		fmt.Fprintf(&b, "    allow_edit: %v\n    max_lifetime: %dm\n", t%7 == 0, 30+t%31)
	}
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
// loaded (steady) and the most the heap held while a second copy was parsed
// beside it (peak), sampled every millisecond: a reload's memory cost.
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
		b.ReportMetric(float64(steady)/(1<<20), "steady-heap-MB")
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(peak.Load())/float64(steady), "peak/steady")
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
