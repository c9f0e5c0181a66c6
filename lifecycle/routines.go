package lifecycle

import (
	"context"
	"fmt"
	"sync"
)

// Routines owns the background goroutines of one component: they run under a context the
// component owns (not the start hook's), and Stop cancels it and joins them. The zero value
// is ready to use. Go and Stop are safe for concurrent use; Stop is idempotent and safe
// before any Go.
type Routines struct {
	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Go runs fn in a goroutine with the component's context. After Stop it does nothing.
func (r *Routines) Go(fn func(ctx context.Context)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	if r.ctx.Err() != nil {
		return
	}
	ctx := r.ctx
	r.wg.Go(func() { fn(ctx) })
}

// Stop cancels the goroutines' context and waits for them to return, or for ctx to be done.
func (r *Routines) Stop(ctx context.Context) error {
	r.mu.Lock()
	if r.ctx == nil {
		r.ctx, r.cancel = context.WithCancel(context.Background())
	}
	r.cancel()
	r.mu.Unlock()

	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("goroutines still running at stop deadline: %w", ctx.Err())
	}
}
