package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
)

// Answer is a canned reply for a route, set with [Server.SetAnswer] or
// PUT /_emulator/answers/{route}: tests reproduce any Power BI or Entra
// answer byte for byte (an error shape seen in production, a malformed
// body) without teaching the emulator each one.
//
// A call that gets the answer is still counted and recorded, and waits at
// the route's gate if one is closed; no fault and no handler runs for it.
type Answer struct {
	// Status is the HTTP status (0 means 200).
	Status int
	// Header is added to the reply. It replaces the emulator's own header
	// of the same name (RequestId, Content-Type); a name with no values
	// removes that header. Content-Type defaults to application/json.
	Header http.Header
	// Body is written as is.
	Body []byte
	// Times is how many calls get this answer; 0 means every call until
	// [Server.ClearAnswers].
	Times int
	// Drop closes the connection without a reply instead (Status, Header
	// and Body are ignored).
	Drop bool
}

// answers holds at most one canned answer per route.
type answers struct {
	mu      sync.Mutex
	byRoute map[string]*cannedAnswer
}

// cannedAnswer is an Answer with the calls it has left.
type cannedAnswer struct {
	a    Answer
	left int // calls left; ignored when a.Times is 0
}

func (as *answers) set(route string, a Answer) {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.byRoute == nil {
		as.byRoute = map[string]*cannedAnswer{}
	}
	a.Header = a.Header.Clone()
	a.Body = append([]byte(nil), a.Body...)
	as.byRoute[route] = &cannedAnswer{a: a, left: a.Times}
}

func (as *answers) clear() {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.byRoute = nil
}

// take returns the answer for one call of route, using up one of its
// Times, or false when the route has none.
func (as *answers) take(route string) (Answer, bool) {
	as.mu.Lock()
	defer as.mu.Unlock()
	c, ok := as.byRoute[route]
	if !ok {
		return Answer{}, false
	}
	if c.a.Times > 0 {
		c.left--
		if c.left <= 0 {
			delete(as.byRoute, route)
		}
	}
	return c.a, true
}

// write sends the answer.
func (a Answer) write(w http.ResponseWriter) {
	if a.Drop {
		dropConnection(w)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	for k, v := range a.Header {
		// Names match in any case: the request-id headers are set
		// without canonicalising, as the real services spell them.
		for have := range h {
			if strings.EqualFold(have, k) {
				delete(h, have)
			}
		}
		if len(v) > 0 {
			h[k] = append([]string(nil), v...)
		}
	}
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(a.Body)
}

// answerJSON is Answer on the wire of PUT /_emulator/answers/{route}: the
// body is text, as a curl user writes it.
type answerJSON struct {
	Status int         `json:"status"`
	Header http.Header `json:"headers,omitempty"`
	Body   string      `json:"body"`
	Times  int         `json:"times"`
	Drop   bool        `json:"drop,omitempty"`
}

// MarshalJSON writes Body as text.
func (a Answer) MarshalJSON() ([]byte, error) {
	return json.Marshal(answerJSON{a.Status, a.Header, string(a.Body), a.Times, a.Drop})
}

// UnmarshalJSON reads Body as text and rejects unknown keys.
func (a *Answer) UnmarshalJSON(b []byte) error {
	var v answerJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	*a = Answer{Status: v.Status, Header: v.Header, Body: []byte(v.Body), Times: v.Times, Drop: v.Drop}
	return nil
}

// Validate reports a status outside 100..599 or a negative Times.
func (a Answer) Validate() error {
	var errs []error
	if a.Status != 0 && (a.Status < 100 || a.Status > 599) {
		errs = append(errs, fmt.Errorf("status: %d is not an HTTP status", a.Status))
	}
	if a.Times < 0 {
		errs = append(errs, errors.New("times: negative"))
	}
	return errors.Join(errs...)
}
