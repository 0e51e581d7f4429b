package torch

import "sync"

// Scope owns tensors and frees them all at Close. Results of operations join
// the scope of their first scoped input, so wrapping a training step's inputs
// in a scope releases every intermediate the step created; parameters (which
// belong to no scope) and tensors marked with Keep survive.
//
// A Scope is safe for use by several goroutines.
type Scope struct {
	mu     sync.Mutex
	ts     []*Tensor
	closed bool
}

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{} }

// WithScope runs f with a fresh scope and closes it when f returns.
func WithScope(f func(s *Scope) error) error {
	s := NewScope()
	defer s.Close()
	return f(s)
}

func (s *Scope) add(t *Tensor) {
	s.mu.Lock()
	if s.closed {
		// A result produced from a closed scope's tensors cannot exist (they
		// were freed), but a racing Track can; free at once rather than leak.
		s.mu.Unlock()
		t.Free()
		return
	}
	t.scope = s
	s.ts = append(s.ts, t)
	s.mu.Unlock()
}

func (s *Scope) remove(t *Tensor) {
	s.mu.Lock()
	if t.scope == s {
		t.scope = nil
	}
	s.mu.Unlock()
}

// Track hands t to the scope (moving it from any other scope) and returns it.
// Use it for results of operations whose inputs all belong to no scope
// (parameters, say). On a nil scope it does nothing.
func (s *Scope) Track(t *Tensor) *Tensor {
	if s == nil || t == nil || t.h == nil || t.scope == s {
		return t
	}
	t.Keep()
	s.add(t)
	return t
}

// Len is the number of live tensors the scope currently owns.
func (s *Scope) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.ts {
		if t.scope == s && !t.freed.Load() {
			n++
		}
	}
	return n
}

// Close frees every tensor the scope still owns. Closing twice is harmless.
func (s *Scope) Close() {
	s.mu.Lock()
	ts := s.ts
	s.ts = nil
	s.closed = true
	for _, t := range ts {
		if t.scope == s {
			t.scope = nil
			t.Free()
		}
	}
	s.mu.Unlock()
}
