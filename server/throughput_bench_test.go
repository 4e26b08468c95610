package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/embedgate/embedgate/emulator"
	embedgatev1 "github.com/embedgate/embedgate/gen/embedgate/v1"
)

// Throughput benchmark parameters: 16 calls in flight, rounds of 2 s, each
// server measured five times, interleaved, so that the machine's noise hits
// both alike (on a shared virtual machine one round's ratio can be off by
// ±0.1, the median of five by about ±0.05).
const (
	tpConcurrency = 16
	tpRound       = 2 * time.Second
	tpRounds      = 5
)

// BenchmarkCachedThroughput is Embedgate's hot path against the floor, in
// one run: the real `embedgate serve` (logs and audit written to files) and a
// bare grpc-go server with the same mTLS answering a 1.5 KB message
// (server/testdata/bareserver), each a process on one core (GOMAXPROCS=1,
// pinned to CPU 0 with taskset when there is one), loaded by this process
// (pinned to CPU 1) with 16 concurrent calls of a grant the token cache
// holds. It reports each one's calls per second and their ratio, the median
// of the rounds' ratios: the cost of Embedgate's chain, decision cache,
// token cache and records over gRPC with mTLS.
func BenchmarkCachedThroughput(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs two CPUs: one for the servers, one for the load")
	}
	dir := b.TempDir()
	embedgate := buildCommand(b, dir, "github.com/embedgate/embedgate/cmd/embedgate")
	bare := buildCommand(b, dir, "github.com/embedgate/embedgate/server/testdata/bareserver")

	emu, err := emulator.Start(context.Background(), emulator.Config{})
	must(b, err)
	b.Cleanup(func() { emu.Close() })
	ca := writeProcessFolder(b, dir, emu.URL(), emu.CACertPEM(), "", "")

	pin := func(cpu string, args ...string) []string {
		if _, err := exec.LookPath("taskset"); err == nil {
			return append([]string{"taskset", "-c", cpu}, args...)
		}
		return args
	}
	start := func(name string, logFile string, addrOf func() (string, bool), args ...string) (string, int) {
		log, err := os.Create(filepath.Join(dir, logFile))
		must(b, err)
		b.Cleanup(func() { log.Close() })
		argv := pin("0", args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
		cmd.Stdout, cmd.Stderr = log, log
		must(b, cmd.Start())
		b.Cleanup(func() { // gracefully, so that a profile or a log is complete
			_ = cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
		deadline := time.Now().Add(30 * time.Second)
		for {
			if addr, ok := addrOf(); ok {
				return addr, cmd.Process.Pid
			}
			if time.Now().After(deadline) {
				data, _ := os.ReadFile(filepath.Join(dir, logFile))
				b.Fatalf("%s did not start:\n%s", name, data)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	egAddr, egPID := start("embedgate", "embedgate.log", func() (string, bool) { return servingAddr(filepath.Join(dir, "embedgate.log")) },
		embedgate, "serve", "--config", filepath.Join(dir, "config.yaml"))
	bareAddr, barePID := start("bareserver", "bare.log", func() (string, bool) {
		data, err := os.ReadFile(filepath.Join(dir, "bare.addr"))
		return string(data), err == nil
	}, bare, "-cert", filepath.Join(dir, "server.pem"), "-key", filepath.Join(dir, "server-key.pem"), "-ca", filepath.Join(dir, "ca.pem"), "-addr-file", filepath.Join(dir, "bare.addr"))

	// The load runs on the other CPU.
	if _, err := exec.LookPath("taskset"); err == nil {
		if msg, err := exec.Command("taskset", "-a", "-p", "-c", "1", strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			b.Logf("could not pin the load to CPU 1: %v %s", err, msg)
		}
	}
	s := &stack{ca: ca}
	cert := s.clientCert(b, frontend)
	s.addr = egAddr
	egClient := embedgatev1.NewEmbedTokenServiceClient(s.dial(b, cert))
	s.addr = bareAddr
	bareClient := embedgatev1.NewEmbedTokenServiceClient(s.dial(b, cert))
	req := &embedgatev1.GenerateEmbedTokenRequest{Tenant: "acme", User: "alice@acme.example", ReportIds: []string{salesReport}}
	for _, c := range []embedgatev1.EmbedTokenServiceClient{egClient, bareClient} {
		if _, err := c.GenerateEmbedToken(context.Background(), req); err != nil { // warm: sign-in, metadata, the cached grant
			b.Fatal(err)
		}
	}

	// round loads one server for tpRound; it returns its calls per second
	// and the server's CPU time per call.
	round := func(c embedgatev1.EmbedTokenServiceClient, pid int) (float64, time.Duration) {
		cpu0 := cpuTime(b, pid)
		var calls atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(tpRound)
		for range tpConcurrency {
			wg.Go(func() {
				for time.Now().Before(stop) {
					if _, err := c.GenerateEmbedToken(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
					calls.Add(1)
				}
			})
		}
		wg.Wait()
		n := calls.Load()
		return float64(n) / tpRound.Seconds(), (cpuTime(b, pid) - cpu0) / time.Duration(max(n, 1))
	}
	var bareRates, egRates, ratios, cpuRatios []float64
	var bareCPU, egCPU []time.Duration
	b.ResetTimer()
	for range tpRounds {
		br, bc := round(bareClient, barePID)
		er, ec := round(egClient, egPID)
		bareRates, egRates, ratios = append(bareRates, br), append(egRates, er), append(ratios, er/br)
		bareCPU, egCPU, cpuRatios = append(bareCPU, bc), append(egCPU, ec), append(cpuRatios, float64(bc)/float64(ec))
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(median(bareRates), "bare-calls/s")
	b.ReportMetric(median(egRates), "embedgate-calls/s")
	b.ReportMetric(median(ratios), "embedgate/bare")
	b.ReportMetric(median(cpuRatios), "embedgate/bare-per-cpu")
	b.Logf("rounds: bare %.0f, embedgate %.0f calls/s; ratios %.2f", bareRates, egRates, ratios)
	b.Logf("CPU per call: bare %v, embedgate %v; calls per CPU-second, embedgate/bare %.2f", bareCPU, egCPU, cpuRatios)
	if n := emu.Counters()[emulator.RouteGenerateToken]; n != 1 {
		b.Errorf("GenerateToken calls = %d: the load was not the cached path", n)
	}
}

// cpuTime is the CPU time a process has used so far: the sum over its
// threads of the scheduler's run time (/proc/PID/task/*/schedstat, in ns).
// It tells what each call cost the server even when other work shares its
// CPU, which calls per second alone cannot.
func cpuTime(b *testing.B, pid int) time.Duration {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("no schedstat for process %d: %v", pid, err)
	}
	var sum time.Duration
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that ended
		}
		var ns int64
		if _, err := fmt.Sscan(string(data), &ns); err == nil {
			sum += time.Duration(ns)
		}
	}
	return sum
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
