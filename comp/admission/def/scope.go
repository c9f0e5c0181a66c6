package def

import (
	"slices"
	"sync"
)

// NamespaceScope is the set of namespaces a webhook entry covers. Its owner (the autoscaling
// stack: the namespaces holding an active DPA) sets what it wants; the registrar, on the
// leader, writes it into the entry's namespaceSelector and records what the apiserver has.
// Whoever must not act before the apiserver sends a namespace's pods to the webhook (a rollout)
// asks Covers. A nil *NamespaceScope is cluster-wide: it covers every namespace.
type NamespaceScope struct {
	mu       sync.Mutex
	wanted   []string        // sorted
	applied  map[string]bool // what the last applied entry covers
	onChange []func()
}

// NewNamespaceScope returns an empty scope: it covers nothing until namespaces are set and
// applied.
func NewNamespaceScope() *NamespaceScope { return &NamespaceScope{applied: map[string]bool{}} }

// Set replaces the wanted namespaces; the registrar is told when they change.
func (s *NamespaceScope) Set(namespaces []string) {
	names := slices.Clone(namespaces)
	slices.Sort(names)
	names = slices.Compact(names)
	s.mu.Lock()
	changed := !slices.Equal(s.wanted, names)
	s.wanted = names
	fs := slices.Clone(s.onChange)
	s.mu.Unlock()
	if changed {
		for _, f := range fs {
			f()
		}
	}
}

// Wanted returns the wanted namespaces, sorted.
func (s *NamespaceScope) Wanted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.wanted)
}

// Applied records the namespaces the apiserver's entry now covers (none: the entry is absent).
func (s *NamespaceScope) Applied(namespaces []string) {
	m := make(map[string]bool, len(namespaces))
	for _, n := range namespaces {
		m[n] = true
	}
	s.mu.Lock()
	s.applied = m
	s.mu.Unlock()
}

// Status is the scope for /status.
func (s *NamespaceScope) Status() *ScopeStatus {
	if s == nil {
		return &ScopeStatus{ClusterWide: true}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &ScopeStatus{Namespaces: slices.Clone(s.wanted), Covered: len(s.applied)}
}

// Covers reports whether the applied entry covers the namespace. Always true for a nil scope.
func (s *NamespaceScope) Covers(namespace string) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied[namespace]
}

// OnChange registers f, called (it must not block) whenever the wanted namespaces change.
func (s *NamespaceScope) OnChange(f func()) {
	s.mu.Lock()
	s.onChange = append(s.onChange, f)
	s.mu.Unlock()
}
