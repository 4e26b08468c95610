package emulator

import "sync"

// The test hooks: what a client sent, what it is answered, when it is
// answered, and which credentials it was handed. Each works from Go and,
// except AccessTokens, through the /_emulator/ admin routes.

// Requests returns the requests of a route (a Route* name), oldest first:
// the last MaxRecorded since the start or [Server.ResetRequests], refused
// and faulted calls included. Credentials are redacted (see [Recorded]).
func (s *Server) Requests(route string) []Recorded { return s.recorded.get(route) }

// ResetRequests forgets every recorded request.
func (s *Server) ResetRequests() { s.recorded.reset() }

// SetAnswer makes the next a.Times calls of route (every call, when Times
// is 0) get a instead of the emulator's own reply. It replaces the route's
// previous answer.
func (s *Server) SetAnswer(route string, a Answer) { s.answers.set(route, a) }

// ClearAnswers removes every canned answer.
func (s *Server) ClearAnswers() { s.answers.clear() }

// Gate closes a gate on route, or returns the one already closed there:
// calls of the route wait until [Gate.Open].
func (s *Server) Gate(route string) *Gate { return s.gates.get(route) }

// AccessTokens returns every Entra token the emulator issued (access, ID
// and refresh tokens), oldest first, so a test can scan its logs for
// them. Go only: no admin route hands them out.
func (s *Server) AccessTokens() []string { return s.issued.all() }

// issuedTokens remembers the Entra access tokens handed out.
type issuedTokens struct {
	mu     sync.Mutex
	tokens []string
}

func (it *issuedTokens) add(token string) {
	it.mu.Lock()
	defer it.mu.Unlock()
	it.tokens = append(it.tokens, token)
}

func (it *issuedTokens) all() []string {
	it.mu.Lock()
	defer it.mu.Unlock()
	return append([]string(nil), it.tokens...)
}
