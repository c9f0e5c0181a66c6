package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// HTTPServer is the lifecycle of one http.Server shared by lazyscale's servers: Listen binds
// synchronously (a taken port fails start with a clear error) and serves in the background;
// Shutdown drains requests in flight and joins the serving goroutine. Safe for concurrent
// use; Shutdown is idempotent and safe without Listen.
type HTTPServer struct {
	Server *http.Server
	// OnServeError is called if serving stops for another reason than Shutdown.
	OnServeError func(error)

	mu       sync.Mutex
	listener net.Listener
	served   chan struct{}
}

// Listen binds addr and serves, over TLS when Server.TLSConfig is set.
func (h *HTTPServer) Listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	served := make(chan struct{})
	h.mu.Lock()
	h.listener, h.served = ln, served
	h.mu.Unlock()
	go func() {
		defer close(served)
		var err error
		if h.Server.TLSConfig != nil {
			err = h.Server.ServeTLS(ln, "", "") // certificates come from TLSConfig; also sets up HTTP/2
		} else {
			err = h.Server.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) && h.OnServeError != nil {
			h.OnServeError(err)
		}
	}()
	return ln.Addr(), nil
}

// Addr is the bound address, "" before Listen.
func (h *HTTPServer) Addr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.listener == nil {
		return ""
	}
	return h.listener.Addr().String()
}

// Shutdown drains requests in flight and waits for the serving goroutine, bounded by ctx.
func (h *HTTPServer) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	served := h.served
	h.mu.Unlock()
	if served == nil {
		return nil
	}
	err := h.Server.Shutdown(ctx)
	select {
	case <-served:
	case <-ctx.Done():
	}
	if err != nil {
		return fmt.Errorf("http server shutdown: %w", err)
	}
	return nil
}
