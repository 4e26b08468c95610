// Package jsonlog is a log/slog handler that writes exactly the JSON lines
// of slog.JSONHandler, several times faster for the records the service
// writes on every call: the call record and the audit record.
//
// The fast path encodes the attribute kinds those records use (strings,
// integers, booleans, durations, times, lists of plain strings and maps of
// them) with
// precomputed key encodings and no reflection. Anything else in a record (a
// float, an error, a group, a LogValuer, a key that needs escaping) sends the
// whole record to an slog.JSONHandler on the same writer, so the output is
// slog's in every case; a test compares the two byte for byte. Each record
// reaches the writer in one Write call.
package jsonlog

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Handler writes JSON lines. It is safe for concurrent use.
type Handler struct {
	w     *lockedWriter
	level slog.Leveler
	slow  slog.Handler // the same output, for what the fast path does not encode
	// prefix holds the attributes given to WithAttrs, encoded, each with its
	// leading comma.
	prefix []byte
	// fast is false once WithGroup or WithAttrs was given something the fast
	// path does not encode: every record then goes to slow.
	fast bool
}

// New returns a Handler writing to w records at or above level (Info when
// level is nil).
func New(w io.Writer, level slog.Leveler) *Handler {
	if level == nil {
		level = slog.LevelInfo
	}
	lw := &lockedWriter{w: w}
	return &Handler{
		w:     lw,
		level: level,
		slow:  slog.NewJSONHandler(lw, &slog.HandlerOptions{Level: level}),
		fast:  true,
	}
}

// Enabled reports whether level is at or above the handler's level.
func (h *Handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// WithAttrs returns a Handler that adds attrs to every record.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.slow = h.slow.WithAttrs(attrs)
	if h.fast {
		prefix := append([]byte(nil), h.prefix...)
		for _, a := range attrs {
			var ok bool
			if prefix, ok = appendAttr(prefix, a); !ok {
				h2.fast = false
				break
			}
		}
		h2.prefix = prefix
	}
	return &h2
}

// WithGroup returns a Handler that puts later attributes in the group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	h2 := *h
	h2.slow = h.slow.WithGroup(name)
	h2.fast = false
	return &h2
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Handle writes r as one JSON line.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if !h.fast {
		return h.slow.Handle(ctx, r)
	}
	bp, b, ok := h.begin(r.Time, r.Level, r.Message)
	if ok {
		r.Attrs(func(a slog.Attr) bool {
			b, ok = appendAttr(b, a)
			return ok
		})
	}
	if !ok {
		putBuf(bp)
		return h.slow.Handle(ctx, r)
	}
	return h.finish(bp, b)
}

// HandleAttrs writes the line Handle would write for a record of t, level,
// msg and attrs, without building the slog.Record: a record of more than
// five attributes allocates their copy, and the per-call records have up
// to thirty. The caller checks Enabled first, as slog.Logger does.
func (h *Handler) HandleAttrs(ctx context.Context, t time.Time, level slog.Level, msg string, attrs []slog.Attr) error {
	if h.fast {
		bp, b, ok := h.begin(t, level, msg)
		for i := 0; ok && i < len(attrs); i++ {
			b, ok = appendAttr(b, attrs[i])
		}
		if ok {
			return h.finish(bp, b)
		}
		putBuf(bp)
	}
	r := slog.NewRecord(t, level, msg, 0)
	r.AddAttrs(attrs...)
	return h.slow.Handle(ctx, r)
}

// begin takes a buffer and encodes a record's time, level, message and the
// handler's own attributes; false for what only slog encodes (a year out
// of range).
func (h *Handler) begin(t time.Time, level slog.Level, msg string) (*[]byte, []byte, bool) {
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], '{')
	if !t.IsZero() {
		t = t.Round(0)
		if y := t.Year(); y < 0 || y >= 10000 {
			return bp, b, false
		}
		b = append(b, `"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	b = appendString(b, level.String())
	b = append(b, `,"msg":`...)
	b = appendString(b, msg)
	return bp, append(b, h.prefix...), true
}

// finish ends the line, writes it in one Write and returns the buffer.
func (h *Handler) finish(bp *[]byte, b []byte) error {
	b = append(b, '}', '\n')
	*bp = b
	_, err := h.w.Write(b)
	putBuf(bp)
	return err
}

func putBuf(bp *[]byte) {
	if cap(*bp) <= 16<<10 {
		bufPool.Put(bp)
	}
}

// appendAttr appends ,"key":value and reports whether it could: false for
// what only slog.JSONHandler encodes as slog would.
func appendAttr(b []byte, a slog.Attr) ([]byte, bool) {
	if a.Key == "" || !plain(a.Key) {
		return b, false
	}
	b = append(b, ',', '"')
	b = append(b, a.Key...)
	b = append(b, '"', ':')
	v := a.Value
	switch v.Kind() {
	case slog.KindString:
		return appendString(b, v.String()), true
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		return strconv.AppendInt(b, int64(v.Duration()), 10), true
	case slog.KindTime:
		t := v.Time()
		if y := t.Year(); y < 0 || y >= 10000 {
			return b, false
		}
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"'), true
	case slog.KindAny:
		switch x := v.Any().(type) {
		case []string:
			return appendList(b, x)
		case map[string][]string:
			// As encoding/json writes a map: keys sorted.
			if x == nil {
				return append(b, "null"...), true
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				if !plain(k) {
					return b, false
				}
				keys = append(keys, k)
			}
			slices.Sort(keys)
			b = append(b, '{')
			for i, k := range keys {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, '"')
				b = append(b, k...)
				b = append(b, '"', ':')
				var ok bool
				if b, ok = appendList(b, x[k]); !ok {
					return b, false
				}
			}
			return append(b, '}'), true
		}
	}
	return b, false
}

// appendList appends a list of plain strings as encoding/json writes it.
func appendList(b []byte, ss []string) ([]byte, bool) {
	if ss == nil {
		return append(b, "null"...), true
	}
	b = append(b, '[')
	for i, s := range ss {
		if !plain(s) {
			return b, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, s...)
		b = append(b, '"')
	}
	return append(b, ']'), true
}

// plain reports whether s is printable ASCII with nothing JSON (or HTML, for
// encoding/json) would escape: written as it is, between quotes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte[s[i]] {
			return false
		}
	}
	return true
}

// plainByte and asIs tell, by a table, what plain and appendString would
// test byte by byte: the records' keys and values are scanned on every call.
var plainByte, asIs = func() (plain, asIs [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		asIs[c] = c != '"' && c != '\\'
		plain[c] = asIs[c] && c != '<' && c != '>' && c != '&'
	}
	return plain, asIs
}()

// appendString appends s as a JSON string, escaped as slog.JSONHandler
// escapes it.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if asIs[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but not valid JavaScript: escaped, as slog does.
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hex = "0123456789abcdef"

// lockedWriter serialises the writes of the fast path and of slow, which
// share the writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
