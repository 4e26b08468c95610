package jsonlog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// logValuer is a LogValuer, which only the slow path resolves.
type logValuer struct{}

func (logValuer) LogValue() slog.Value { return slog.StringValue("resolved") }

var (
	when  = time.Date(2026, 12, 2, 8, 30, 1, 123456789, time.FixedZone("CET", 3600))
	odd   = "quote\" backslash\\ nl\n cr\r tab\t nul\x00 esc\x1b del\x7f bad\xff ls\u2028 ps\u2029 é 日本 <&> end"
	cases = []struct {
		name  string
		level slog.Level
		msg   string
		attrs []slog.Attr
	}{
		{"the call record", slog.LevelInfo, "grpc call", []slog.Attr{
			slog.String("request_id", "0123456789abcdef01234567"), slog.String("method", "/embedgate.v1.EmbedTokenService/GenerateEmbedToken"),
			slog.String("code", "OK"), slog.String("duration", "183.2µs"), slog.String("caller", "spiffe://embedgate.dev/ns/web/sa/frontend"),
		}},
		{"the audit record", slog.LevelInfo, "embed decision", []slog.Attr{
			slog.String("tenant", "acme"), slog.Any("report_ids", []string{"a1000000-0000-4000-8000-000000000001", "b2"}),
			slog.Bool("allow_edit", false), slog.Bool("token_cached", true), slog.Time("expire_time", when),
			slog.Any("dataset_roles", map[string][]string{"d4000000-0000-4000-8000-000000000001": {"Region"}}),
			slog.Int("n", -42), slog.Uint64("u", math.MaxUint64), slog.Int64("min", math.MinInt64), slog.Duration("d", -1500*time.Millisecond),
		}},
		{"no attributes", slog.LevelWarn, "", nil},
		{"escapes in values and message", slog.LevelError, odd, []slog.Attr{slog.String("v", odd), slog.String("empty", "")}},
		{"custom level", slog.LevelInfo + 2, "m", []slog.Attr{slog.String("k", "v")}},
		{"a key that needs escaping", slog.LevelInfo, "m", []slog.Attr{slog.String("k\"ey", "v")}},
		{"a non-ASCII key", slog.LevelInfo, "m", []slog.Attr{slog.String("clé", "v")}},
		{"an empty key", slog.LevelInfo, "m", []slog.Attr{slog.String("", "v"), slog.Any("", nil)}},
		{"lists", slog.LevelInfo, "m", []slog.Attr{slog.Any("nil", []string(nil)), slog.Any("empty", []string{}), slog.Any("odd", []string{"ok", odd})}},
		{"maps of lists", slog.LevelInfo, "m", []slog.Attr{
			slog.Any("roles", map[string][]string{"d4": {"Region", "EU"}, "a1": {}, "b2": nil, "0": {"x"}}),
			slog.Any("nil", map[string][]string(nil)), slog.Any("empty", map[string][]string{}),
			slog.Any("odd key", map[string][]string{odd: {"x"}}), slog.Any("odd value", map[string][]string{"k": {odd}}),
		}},
		{"a list with HTML characters", slog.LevelInfo, "m", []slog.Attr{slog.Any("l", []string{"<b>&"})}},
		{"floats", slog.LevelInfo, "m", []slog.Attr{slog.Float64("f", 1e21), slog.Float64("g", 0.1), slog.Float64("nan", math.NaN())}},
		{"an error", slog.LevelInfo, "m", []slog.Attr{slog.Any("err", errors.New("boom "+odd))}},
		{"a group", slog.LevelInfo, "m", []slog.Attr{slog.Group("g", slog.String("a", "b"), slog.Int("c", 1)), slog.Group("empty")}},
		{"a LogValuer", slog.LevelInfo, "m", []slog.Attr{slog.Any("lv", logValuer{})}},
		{"other values", slog.LevelInfo, "m", []slog.Attr{slog.Any("map", map[string]int{"a": 1}), slog.Any("nil", nil), slog.Any("ints", []int{1, 2})}},
		{"a time out of range", slog.LevelInfo, "m", []slog.Attr{slog.Time("t", time.Date(12345, 1, 1, 0, 0, 0, 0, time.UTC))}},
		{"many attributes", slog.LevelInfo, "m", func() []slog.Attr {
			var as []slog.Attr
			for i := range 40 {
				as = append(as, slog.Int(strings.Repeat("k", i+1), i))
			}
			return as
		}()},
	}
	// Derivations of a handler: what WithAttrs and WithGroup give.
	derive = []struct {
		name string
		fn   func(slog.Handler) slog.Handler
	}{
		{"as is", func(h slog.Handler) slog.Handler { return h }},
		{"with plain attrs", func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("stream", "audit"), slog.Bool("b", true)})
		}},
		{"with attrs twice", func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("a", "1")}).WithAttrs([]slog.Attr{slog.String("b", odd)})
		}},
		{"with a slow attr", func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.Float64("f", 2.5)})
		}},
		{"with no attrs", func(h slog.Handler) slog.Handler { return h.WithAttrs(nil) }},
		{"with a group", func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.String("a", "1")}).WithGroup("g").WithAttrs([]slog.Attr{slog.String("b", "2")})
		}},
		{"with an empty group name", func(h slog.Handler) slog.Handler { return h.WithGroup("") }},
	}
)

// TestSameBytesAsSlog is the package's contract: every record, through every
// derivation, comes out byte for byte as slog.JSONHandler writes it.
func TestSameBytesAsSlog(t *testing.T) {
	t.Parallel()
	for _, d := range derive {
		for _, c := range cases {
			for _, tm := range []time.Time{when, {}, time.Now(), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
				var got, want bytes.Buffer
				r := slog.NewRecord(tm, c.level, c.msg, 0)
				r.AddAttrs(c.attrs...)
				if err := d.fn(New(&got, slog.LevelDebug)).Handle(context.Background(), r.Clone()); err != nil {
					t.Fatal(err)
				}
				_ = d.fn(slog.NewJSONHandler(&want, &slog.HandlerOptions{Level: slog.LevelDebug})).Handle(context.Background(), r.Clone())
				if got.String() != want.String() {
					t.Errorf("%s, %s, time %v:\n got  %s\n want %s", d.name, c.name, tm, got.String(), want.String())
				}
				got.Reset()
				if err := d.fn(New(&got, slog.LevelDebug)).(*Handler).HandleAttrs(context.Background(), tm, c.level, c.msg, c.attrs); err != nil {
					t.Fatal(err)
				}
				if got.String() != want.String() {
					t.Errorf("HandleAttrs, %s, %s, time %v:\n got  %s\n want %s", d.name, c.name, tm, got.String(), want.String())
				}
			}
		}
	}
}

// TestFastPathTakesTheServiceRecords: the records the service writes on every
// call do not go to slog (which would still be correct, only slower).
func TestFastPathTakesTheServiceRecords(t *testing.T) {
	h := New(io.Discard, nil)
	for _, c := range cases[:2] {
		r := slog.NewRecord(when, c.level, c.msg, 0)
		r.AddAttrs(c.attrs...)
		if allocs := testing.AllocsPerRun(100, func() { _ = h.Handle(context.Background(), r) }); allocs > 0 {
			t.Errorf("%s: %v allocations per record, want 0 (the slow path allocates)", c.name, allocs)
		}
		if allocs := testing.AllocsPerRun(100, func() { _ = h.HandleAttrs(context.Background(), when, c.level, c.msg, c.attrs) }); allocs > 0 {
			t.Errorf("HandleAttrs, %s: %v allocations per record, want 0", c.name, allocs)
		}
	}
}

func TestLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := slog.New(New(&buf, slog.LevelWarn))
	l.Info("hidden")
	l.Warn("shown")
	if s := buf.String(); strings.Contains(s, "hidden") || !strings.Contains(s, `"msg":"shown"`) {
		t.Errorf("output %q", s)
	}
	var lv slog.LevelVar
	h := New(io.Discard, &lv)
	lv.Set(slog.LevelError)
	if h.Enabled(context.Background(), slog.LevelWarn) || !h.Enabled(context.Background(), slog.LevelError) {
		t.Error("a LevelVar's changes are not followed")
	}
}

// TestOneWritePerRecord: concurrent records, fast and slow, reach the writer
// whole, one Write each.
func TestOneWritePerRecord(t *testing.T) {
	t.Parallel()
	w := &recordingWriter{}
	l := slog.New(New(w, nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				if i%2 == 0 {
					l.Info("fast", "i", i, "s", strings.Repeat("x", 100))
				} else {
					l.Info("slow", "f", 1.5, "s", strings.Repeat("y", 100))
				}
			}
		})
	}
	wg.Wait()
	if len(w.writes) != 1600 {
		t.Fatalf("%d writes for 1600 records", len(w.writes))
	}
	for _, wr := range w.writes {
		if !strings.HasPrefix(wr, `{"time":`) || strings.Count(wr, "\n") != 1 || !strings.HasSuffix(wr, "}\n") {
			t.Fatalf("a write is not one record: %q", wr)
		}
	}
}

type recordingWriter struct{ writes []string } // serialised by the handler

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

// BenchmarkAuditRecord compares the handler with slog.JSONHandler on the
// audit record, the larger of the two the service writes per call.
func BenchmarkAuditRecord(b *testing.B) {
	attrs := []slog.Attr{
		slog.String("request_id", "0123456789abcdef01234567"), slog.String("caller", "spiffe://embedgate.dev/ns/web/sa/frontend"),
		slog.String("tenant", "acme"), slog.String("user", "alice@acme.example"),
		slog.Any("report_ids", []string{"a1000000-0000-4000-8000-000000000001"}),
		slog.Bool("allow_edit", false), slog.Bool("allow_create", false), slog.String("lifetime_requested", "0s"),
		slog.String("outcome", "allowed"), slog.String("code", "OK"), slog.String("rule", "tenants.acme"),
		slog.String("workspace_id", "a0000000-0000-4000-8000-000000000001"), slog.String("lifetime", "1h0m0s"),
		slog.Bool("lifetime_clamped", false), slog.String("token_id", "a0000000-0000-4000-8000-000000000001"),
		slog.Bool("token_cached", true), slog.Time("expire_time", when), slog.String("pbi_request_id", "a0000000-0000-4000-8000-000000000001"),
	}
	for _, h := range []struct {
		name string
		h    slog.Handler
	}{{"slog", slog.NewJSONHandler(io.Discard, nil)}, {"jsonlog", New(io.Discard, nil)}} {
		b.Run(h.name, func(b *testing.B) {
			b.ReportAllocs()
			r := slog.NewRecord(time.Now(), slog.LevelInfo, "embed decision", 0)
			r.AddAttrs(attrs...)
			for b.Loop() {
				_ = h.h.Handle(context.Background(), r)
			}
		})
	}
}

// TestEveryByte: each byte value, alone in a message, a value, a key, a
// list and a map's key, comes out as slog writes it (the escape tables
// decide each byte alone).
func TestEveryByte(t *testing.T) {
	t.Parallel()
	for c := range 256 {
		s := "a" + string([]byte{byte(c)}) + "z"
		attrs := []slog.Attr{slog.String("v", s), slog.String(s, "v"), slog.Any("l", []string{s}), slog.Any("m", map[string][]string{s: {"x"}})}
		var got, want bytes.Buffer
		if err := New(&got, nil).HandleAttrs(context.Background(), when, slog.LevelInfo, s, attrs); err != nil {
			t.Fatal(err)
		}
		r := slog.NewRecord(when, slog.LevelInfo, s, 0)
		r.AddAttrs(attrs...)
		_ = slog.NewJSONHandler(&want, nil).Handle(context.Background(), r)
		if got.String() != want.String() {
			t.Errorf("byte %#02x:\n got  %s\n want %s", c, got.String(), want.String())
		}
	}
}
