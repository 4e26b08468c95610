package emulator

import (
	"context"
	"sync"
)

// Gate holds the calls of one route until it is opened, so a test can
// have several requests in flight at a known moment (coalescing, shedding,
// cancellation) without sleeping. Get one with [Server.Gate]. A held call
// is already counted and recorded; it gives up when its request's context
// ends (the client went away), writing nothing.
type Gate struct {
	mu      sync.Mutex
	open    chan struct{} // closed by Open
	opened  bool
	waiting int
	changed chan struct{} // closed and replaced whenever waiting changes
}

func newGate() *Gate {
	return &Gate{open: make(chan struct{}), changed: make(chan struct{})}
}

// Waiting is the number of calls held right now.
func (g *Gate) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting
}

// WaitFor blocks until at least n calls are held, or ctx ends (its error
// is returned).
func (g *Gate) WaitFor(ctx context.Context, n int) error {
	for {
		g.mu.Lock()
		held, changed := g.waiting, g.changed
		g.mu.Unlock()
		if held >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Open releases every held call and lets later calls through. It is
// idempotent. [Server.Gate] on the same route afterwards closes a new gate.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.opened {
		g.opened = true
		close(g.open)
	}
}

// pass holds a call until the gate opens (true) or ctx ends (false).
func (g *Gate) pass(ctx context.Context) bool {
	g.add(1)
	defer g.add(-1)
	select {
	case <-g.open:
		return true
	case <-ctx.Done():
		return false
	}
}

func (g *Gate) add(d int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiting += d
	close(g.changed)
	g.changed = make(chan struct{})
}

func (g *Gate) isOpen() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.opened
}

// gates holds the gate of each route.
type gates struct {
	mu      sync.Mutex
	byRoute map[string]*Gate
}

// get returns the route's gate, closing a new one if there is none or the
// last one was opened.
func (gs *gates) get(route string) *Gate {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if g, ok := gs.byRoute[route]; ok && !g.isOpen() {
		return g
	}
	if gs.byRoute == nil {
		gs.byRoute = map[string]*Gate{}
	}
	g := newGate()
	gs.byRoute[route] = g
	return g
}

// lookup returns the route's gate if it has one that is closed.
func (gs *gates) lookup(route string) (*Gate, bool) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, ok := gs.byRoute[route]
	if !ok || g.isOpen() {
		return nil, false
	}
	return g, true
}
