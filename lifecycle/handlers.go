package lifecycle

import (
	"errors"
	"sync"
)

// ErrSealed is returned by Handlers.Add after Seal: a handler added once its source runs
// would miss what came before.
var ErrSealed = errors.New("handler added after the source started")

// Handlers is the list of handlers a source (a typed view, a watcher) calls. Handlers are added
// while the parts are built, before the source runs; Seal, called when it starts, returns the
// list and refuses later additions. Safe for concurrent use.
type Handlers[H any] struct {
	mu     sync.Mutex
	list   []H
	sealed bool
}

// Add registers h, or returns ErrSealed.
func (h *Handlers[H]) Add(handler H) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sealed {
		return ErrSealed
	}
	h.list = append(h.list, handler)
	return nil
}

// Seal returns the handlers; Add fails from now on.
func (h *Handlers[H]) Seal() []H {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sealed = true
	return h.list
}
