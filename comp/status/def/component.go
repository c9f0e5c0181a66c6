// Package def defines how components report to the status server: each provides /status
// sections and readiness checks into fx value groups, and the server renders whatever it gets.
package def

// Section is one top-level key of the /status JSON document.
type Section struct {
	// Name is the JSON key ("gate", "pod_collection").
	Name string
	// Value returns the section's current value; it is called on every request, from any
	// goroutine, and must not block.
	Value func() any
}

// Check is one readiness check of /readyz.
type Check struct {
	Name string
	// Ready returns nil when the component is ready; it must not block.
	Ready func() error
}

// Component is the status HTTP server.
type Component interface {
	// Addr is the address the server listens on, known once the app has started.
	Addr() string
}
