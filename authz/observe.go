package authz

// OnReload has fn told the outcome of every reload that read new bytes:
// the version now in force and nil, or the rejected file's version (""
// when it could not be read) and why, while the active policy keeps
// serving. For metrics; fn must be quick, and must not call Reload.
func (s *Store) OnReload(fn func(version string, err error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observers = append(s.observers, fn)
}

// observe tells the observers; the caller holds s.mu.
func (s *Store) observe(version string, err error) {
	for _, fn := range s.observers {
		fn(version, err)
	}
}

// Callers is the number of callers the policy lists.
func (p *Policy) Callers() int { return len(p.callers) }
