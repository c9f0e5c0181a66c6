// Package impl implements the status HTTP server: /healthz, /readyz, /metrics and /status.
package impl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/core/version"
	"github.com/lazyscale/lazyscale/comp/status/def"
)

// Requires is what the status server needs.
type Requires struct {
	Config   configdef.Component
	Logger   *zap.Logger
	Gatherer prometheus.Gatherer
	Sections []def.Section
	Checks   []def.Check
}

// Provides is what the status server gives.
type Provides struct {
	Comp  def.Component
	Start func(context.Context) error
	Stop  func(context.Context) error
}

type server struct {
	log      *zap.Logger
	addr     string
	sections []def.Section
	checks   []def.Check
	srv      *http.Server

	mu       sync.Mutex
	listener net.Listener
	served   chan struct{}
}

var _ def.Component = (*server)(nil)

// NewComponent builds the server; Start binds the address.
func NewComponent(reqs Requires) (Provides, error) {
	s := &server{
		log:      reqs.Logger.Named("status"),
		addr:     reqs.Config.Get().Status.Addr,
		sections: append([]def.Section(nil), reqs.Sections...),
		checks:   append([]def.Check(nil), reqs.Checks...),
	}
	sort.Slice(s.checks, func(i, j int) bool { return s.checks[i].Name < s.checks[j].Name })
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reqs.Gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", s.status)
	if reqs.Config.Get().Status.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return Provides{Comp: s, Start: s.start, Stop: s.stop}, nil
}

func (s *server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// start binds synchronously, so a taken port fails startup with a clear error, and serves in
// the background.
func (s *server) start(context.Context) error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("status server on %s: %w", s.addr, err)
	}
	s.mu.Lock()
	s.listener, s.served = ln, make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("status server stopped", zap.Error(err))
		}
	}()
	s.log.Info("status server listening", zap.String("addr", ln.Addr().String()))
	return nil
}

// stop shuts the server down gracefully and joins its goroutine; safe without start.
func (s *server) stop(ctx context.Context) error {
	s.mu.Lock()
	served := s.served
	s.mu.Unlock()
	if served == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	select {
	case <-served:
	case <-ctx.Done():
	}
	if err != nil {
		return fmt.Errorf("status server shutdown: %w", err)
	}
	return nil
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	var failed []string
	for _, c := range s.checks {
		if err := c.Ready(); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", c.Name, err))
		}
	}
	if len(failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, f := range failed {
			_, _ = fmt.Fprintln(w, f)
		}
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

func (s *server) status(w http.ResponseWriter, _ *http.Request) {
	doc := map[string]any{"version": version.Version}
	for _, sec := range s.sections {
		doc[sec.Name] = sec.Value()
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		s.log.Debug("write /status", zap.Error(err))
	}
}
