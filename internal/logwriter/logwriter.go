// Package logwriter batches the service's log and audit records before they
// reach their file or stream: one write system call per batch instead of one
// per record, which on the hot path costs more than building the record.
//
// Records are kept whole and in order: a Write is one record (slog handlers
// write each record with one call), appended to the buffer under a lock. The
// buffer goes out when it holds Size bytes, at the latest Interval after its
// first record, and on Flush and Close; so a record waits at most Interval,
// and none is lost on a graceful shutdown (the server closes the writer after
// its last call has drained). A record larger than the buffer is written
// directly, after the buffered ones.
package logwriter

import (
	"io"
	"sync"
	"time"
)

// Defaults of New.
const (
	// DefaultSize is the buffer size.
	DefaultSize = 64 << 10
	// DefaultInterval is the longest a record waits in the buffer.
	DefaultInterval = 100 * time.Millisecond
)

// Writer is a batching io.WriteCloser over w. It is safe for concurrent use.
type Writer struct {
	w        io.Writer
	size     int
	interval time.Duration

	mu     sync.Mutex
	buf    []byte
	timer  *time.Timer // armed while the buffer holds records
	err    error       // the first write error, reported by Flush and Close
	closed bool
}

// New returns a Writer over w with the default size and interval.
func New(w io.Writer) *Writer { return NewSize(w, DefaultSize, DefaultInterval) }

// NewSize returns a Writer over w that writes when size bytes are buffered or
// interval has passed since the first buffered record.
func NewSize(w io.Writer, size int, interval time.Duration) *Writer {
	return &Writer{w: w, size: size, interval: interval, buf: make([]byte, 0, size)}
}

// Write buffers one record. It never blocks on the underlying writer unless
// the buffer is full or the record is larger than the buffer. After Close it
// writes through.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return w.w.Write(p)
	}
	if len(w.buf)+len(p) > w.size {
		w.flushLocked()
		if len(p) > w.size {
			if _, err := w.w.Write(p); err != nil && w.err == nil {
				w.err = err
			}
			return len(p), nil
		}
	}
	w.buf = append(w.buf, p...)
	if w.timer == nil {
		w.timer = time.AfterFunc(w.interval, func() { _ = w.Flush() })
	}
	return len(p), nil
}

// Flush writes out what is buffered and returns the first error any write
// met so far.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	return w.err
}

// Close flushes, stops the timer, and makes later writes go straight through
// (a record logged after shutdown still reaches the stream). It does not close
// the underlying writer.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flushLocked()
	w.closed = true
	return w.err
}

func (w *Writer) flushLocked() {
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if len(w.buf) == 0 {
		return
	}
	if _, err := w.w.Write(w.buf); err != nil && w.err == nil {
		w.err = err
	}
	w.buf = w.buf[:0]
}
