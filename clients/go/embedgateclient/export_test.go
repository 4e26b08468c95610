package embedgateclient

import "time"

// SetClock replaces a TokenSource's clock (tests move time past refresh_time).
func SetClock[T Token](s *TokenSource[T], now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// OnWait sets a function called each time a caller starts waiting for a
// token request in flight (tests count the waiters before letting it end).
func OnWait[T Token](s *TokenSource[T], f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onWait = f
}
