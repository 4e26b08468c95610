package logwriter

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/embedgate/embedgate/internal/testkit"
)

// countingWriter records each underlying write.
type countingWriter struct {
	mu     sync.Mutex
	writes []string
	err    error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(p))
	return len(p), c.err
}

func (c *countingWriter) all() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.writes, ""), len(c.writes)
}

func TestRecordsAreBatchedInOrderAndWhole(t *testing.T) {
	t.Parallel()
	under := &countingWriter{}
	w := NewSize(under, 1024, time.Hour)
	var want bytes.Buffer
	for i := range 100 {
		rec := fmt.Sprintf(`{"n":%d}`+"\n", i)
		want.WriteString(rec)
		if _, err := w.Write([]byte(rec)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, writes := under.all()
	if got != want.String() {
		t.Errorf("records out of order or lost")
	}
	if writes >= 10 {
		t.Errorf("%d writes for 100 records in a 1 KB buffer: not batched", writes)
	}
	for i, batch := range under.writes {
		if !strings.HasSuffix(batch, "\n") {
			t.Errorf("write %d splits a record", i)
		}
	}
}

func TestARecordWaitsAtMostTheInterval(t *testing.T) {
	t.Parallel()
	under := &countingWriter{}
	w := NewSize(under, DefaultSize, 20*time.Millisecond)
	defer w.Close()
	if _, err := w.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the record is written without a flush", func() bool { got, _ := under.all(); return got == "one\n" })
}

func TestLargeRecordsAndErrors(t *testing.T) {
	t.Parallel()
	under := &countingWriter{}
	w := NewSize(under, 8, time.Hour)
	_, _ = w.Write([]byte("ab\n"))
	_, _ = w.Write([]byte("a record longer than the buffer\n"))
	if got, _ := under.all(); got != "ab\na record longer than the buffer\n" {
		t.Errorf("got %q: the large record overtook the buffered one", got)
	}
	under.err = errors.New("disk full")
	_, _ = w.Write([]byte("c\n"))
	if err := w.Flush(); err == nil {
		t.Error("a failed write is not reported")
	}
	// After Close, writes go straight through.
	under.err = nil
	_ = w.Close()
	_, _ = w.Write([]byte("late\n"))
	if got, _ := under.all(); !strings.HasSuffix(got, "late\n") {
		t.Errorf("a write after Close was held back: %q", got)
	}
}
