package powerbi

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// bulkheadWait is how long a request waits for a free slot before it is
// shed: long enough to ride out a burst, short enough that a caller is not
// left waiting on a Power BI that has stopped answering.
const bulkheadWait = 100 * time.Millisecond

// bulkhead is a RoundTripper that keeps at most max requests in flight per
// host. A request is in flight from the moment it is sent until its body is
// closed.
type bulkhead struct {
	base http.RoundTripper
	max  int

	mu    sync.Mutex
	hosts map[string]chan struct{}
}

func newBulkhead(base http.RoundTripper, max int) *bulkhead {
	return &bulkhead{base: base, max: max, hosts: map[string]chan struct{}{}}
}

func (b *bulkhead) slots(host string) chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.hosts[host]
	if !ok {
		s = make(chan struct{}, b.max)
		b.hosts[host] = s
	}
	return s
}

// RoundTrip sends r once a slot of its host is free, or fails with
// ErrOverloaded after bulkheadWait.
func (b *bulkhead) RoundTrip(r *http.Request) (*http.Response, error) {
	slots := b.slots(r.URL.Host)
	select {
	case slots <- struct{}{}:
	default:
		t := time.NewTimer(bulkheadWait)
		defer t.Stop()
		select {
		case slots <- struct{}{}:
		case <-t.C:
			return nil, fmt.Errorf("%w: %d to %s", ErrOverloaded, b.max, r.URL.Host)
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	res, err := b.base.RoundTrip(r)
	if err != nil {
		<-slots
		return nil, err
	}
	res.Body = &releasingBody{ReadCloser: res.Body, release: func() { <-slots }}
	return res, nil
}

// releasingBody frees its request's slot once, when closed.
type releasingBody struct {
	io.ReadCloser
	once    sync.Once
	release func()
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.release)
	return err
}

// CloseIdleConnections forwards to the base transport, so that closing the
// client closes its connections.
func (b *bulkhead) CloseIdleConnections() {
	if c, ok := b.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
