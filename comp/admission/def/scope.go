package def

import (
	"cmp"
	"slices"
	"sync"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// Workload is a workload whose new pods a webhook entry must see: a Deployment or a
// StatefulSet, by namespace and name.
type Workload struct {
	Namespace, Kind, Name string
}

func (w Workload) String() string { return w.Namespace + "/" + w.Kind + "/" + w.Name }

func compareWorkloads(a, b Workload) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
}

// NamespaceScope is what a webhook entry covers: the namespaces of the workloads its owner (the
// autoscaling stack: the targets of the active DPAs) wants, and, when the owner also gives
// match conditions, only those workloads' pods inside them. The registrar, on the leader,
// writes it into the entry's namespaceSelector and matchConditions and records what the
// apiserver has. Whoever must not act before the apiserver sends a workload's new pods to the
// webhook (a rollout) asks Covers. A nil *NamespaceScope is cluster-wide: it covers every pod.
type NamespaceScope struct {
	mu          sync.Mutex
	wanted      []Workload // sorted, unique
	conditions  func([]Workload) []admissionregistrationv1.MatchCondition
	maxMatched  int
	applied     map[string]bool   // the namespaces the applied entry covers
	appliedWork map[Workload]bool // nil: every pod of those namespaces
	onChange    []func()
}

// NewNamespaceScope returns an empty scope: it covers nothing until workloads are set and
// applied.
func NewNamespaceScope() *NamespaceScope { return &NamespaceScope{applied: map[string]bool{}} }

// MatchWorkloads narrows the entry to the wanted workloads' pods with the match conditions
// conditions returns for them, while there are at most max of them (above, the entry covers
// every pod of their namespaces: the conditions grow with the workloads, the configuration
// object is bounded). Call it before the scope is used.
func (s *NamespaceScope) MatchWorkloads(max int, conditions func([]Workload) []admissionregistrationv1.MatchCondition) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxMatched, s.conditions = max, conditions
}

// Set replaces the wanted workloads; the registrar is told when they change.
func (s *NamespaceScope) Set(workloads []Workload) {
	ws := slices.Clone(workloads)
	slices.SortFunc(ws, compareWorkloads)
	ws = slices.Compact(ws)
	s.mu.Lock()
	changed := !slices.Equal(s.wanted, ws)
	s.wanted = ws
	fs := slices.Clone(s.onChange)
	s.mu.Unlock()
	if changed {
		for _, f := range fs {
			f()
		}
	}
}

// ScopeEntry is what the entry must hold for a scope at one moment.
type ScopeEntry struct {
	// Namespaces are the namespaces covered, sorted; none: no entry.
	Namespaces []string
	// Workloads, when not nil, are the only workloads whose pods are matched, by Conditions.
	Workloads  []Workload
	Conditions []admissionregistrationv1.MatchCondition
}

// Entry returns what the entry must hold now.
func (s *NamespaceScope) Entry() ScopeEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := ScopeEntry{Namespaces: s.namespacesLocked()}
	if s.conditions != nil && len(s.wanted) > 0 && len(s.wanted) <= s.maxMatched {
		e.Workloads = slices.Clone(s.wanted)
		e.Conditions = s.conditions(e.Workloads)
	}
	return e
}

// Applied records what the apiserver's entry now holds (nil: the entry is absent).
func (s *NamespaceScope) Applied(e *ScopeEntry) {
	namespaces := map[string]bool{}
	var work map[Workload]bool
	if e != nil {
		for _, n := range e.Namespaces {
			namespaces[n] = true
		}
		if e.Workloads != nil {
			work = make(map[Workload]bool, len(e.Workloads))
			for _, w := range e.Workloads {
				work[w] = true
			}
		}
	}
	s.mu.Lock()
	s.applied, s.appliedWork = namespaces, work
	s.mu.Unlock()
}

// Status is the scope for /status.
func (s *NamespaceScope) Status() *ScopeStatus {
	if s == nil {
		return &ScopeStatus{ClusterWide: true}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return &ScopeStatus{Namespaces: s.namespacesLocked(), Workloads: len(s.wanted), Covered: len(s.applied), MatchesWorkloads: s.appliedWork != nil}
}

// namespacesLocked returns the wanted workloads' namespaces, sorted (wanted is sorted by
// namespace first).
func (s *NamespaceScope) namespacesLocked() []string {
	var out []string
	for _, w := range s.wanted {
		if n := len(out); n == 0 || out[n-1] != w.Namespace {
			out = append(out, w.Namespace)
		}
	}
	return out
}

// Covers reports whether the applied entry sends the workload's new pods to the webhook.
// Always true for a nil scope.
func (s *NamespaceScope) Covers(w Workload) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied[w.Namespace] && (s.appliedWork == nil || s.appliedWork[w])
}

// OnChange registers f, called (it must not block) whenever the wanted workloads change.
func (s *NamespaceScope) OnChange(f func()) {
	s.mu.Lock()
	s.onChange = append(s.onChange, f)
	s.mu.Unlock()
}
