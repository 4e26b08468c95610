package testkit

import (
	"fmt"
	"strings"
	"testing"
)

type inner struct {
	Name  string
	Roles []string
}

type sample struct {
	A      string
	B      bool
	N      int
	P      *inner
	L      []inner
	M      map[string]inner
	Hidden string // left out of the key below
}

func fullSample() sample {
	return sample{A: "a", B: true, N: 1, P: &inner{Name: "p", Roles: []string{"r"}},
		L: []inner{{Name: "l", Roles: []string{"r"}}}, M: map[string]inner{"k": {Name: "m", Roles: []string{"r"}}}, Hidden: "h"}
}

// recorder keeps a test's errors instead of failing it.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestEachFieldChangesFindsAFieldLeftOut: a key that leaves one field out,
// at any depth, is caught, and only it.
func TestEachFieldChangesFindsAFieldLeftOut(t *testing.T) {
	t.Parallel()
	all := func(s sample) string {
		return fmt.Sprintf("%v|%v|%v|%v|%v|%v|%v", s.A, s.B, s.N, s.P, s.L, s.M, s.Hidden)
	}
	deep := func(s sample) string { // %v of a pointer prints the address: spell it out
		p := "nil"
		if s.P != nil {
			p = fmt.Sprint(*s.P)
		}
		return strings.Replace(all(s), fmt.Sprint(s.P), p, 1)
	}
	r := &recorder{TB: t}
	EachFieldChanges(r, fullSample, deep)
	if len(r.errs) != 0 {
		t.Errorf("a key of every field: %v", r.errs)
	}
	r = &recorder{TB: t}
	EachFieldChanges(r, fullSample, func(s sample) string { s.Hidden = ""; return deep(s) })
	if len(r.errs) != 1 || !strings.Contains(r.errs[0], "sample.Hidden") {
		t.Errorf("a key without Hidden: %v", r.errs)
	}
	r = &recorder{TB: t}
	EachFieldChanges(r, fullSample, func(s sample) string {
		m := map[string]inner{}
		for k, v := range s.M {
			v.Roles = nil
			m[k] = v
		}
		s.M = m
		return deep(s)
	})
	if len(r.errs) != 2 || !strings.Contains(strings.Join(r.errs, " "), "sample.M[k].Roles") {
		t.Errorf("a key without the map values' roles: %v", r.errs)
	}
	r = &recorder{TB: t}
	EachFieldChanges(r, func() sample { s := fullSample(); s.P = nil; return s }, deep)
	if len(r.errs) == 0 || !strings.Contains(r.errs[0], "full() leaves it empty") {
		t.Errorf("an empty pointer in full(): %v", r.errs)
	}
}
