// Package impl implements the status HTTP server: /healthz, /readyz, /metrics and /status.
package impl

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/core/version"
	"github.com/lazyscale/lazyscale/comp/status/def"
	"github.com/lazyscale/lazyscale/lifecycle"
)

// Requires is what the status server needs.
type Requires struct {
	Config   configdef.Component
	Logger   *zap.Logger
	Gatherer prometheus.Gatherer
	Sections []def.Section
	Checks   []def.Check
	// Debug are served with the profiles, only while status.pprof is on.
	Debug []def.DebugHandler
	// Kube reviews the tokens of requests to /metrics and /status when status.auth is
	// kubernetes (nil otherwise is fine).
	Kube kubernetes.Interface
	// Autoscalers feeds /ui (nil: the page shows the agent only).
	Autoscalers def.AutoscalersReport
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
	http     lifecycle.HTTPServer
	// version is the agent's, autoscalers what /ui shows of the DPAs (nil: no stack).
	version     string
	autoscalers def.AutoscalersReport
}

var _ def.Component = (*server)(nil)

// NewComponent builds the server; Start binds the address.
func NewComponent(reqs Requires) (Provides, error) {
	s := &server{
		log:      reqs.Logger.Named("status"),
		addr:     reqs.Config.Get().Status.Addr,
		sections: append([]def.Section(nil), reqs.Sections...),
		checks:   append([]def.Check(nil), reqs.Checks...),
		version:  version.Version, autoscalers: reqs.Autoscalers,
	}
	sort.Slice(s.checks, func(i, j int) bool { return s.checks[i].Name < s.checks[j].Name })
	cfg := reqs.Config.Get().Status
	// protect guards what tells about the DPAs and the agent: with status.auth kubernetes, the
	// apiserver must authenticate and authorize the caller (auth.go).
	protect := func(h http.Handler) http.Handler { return h }
	if cfg.Auth == configdef.StatusAuthKubernetes {
		if reqs.Kube == nil {
			return Provides{}, errNoKube
		}
		protect = newAuthorizer(reqs.Kube, s.log).protect
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", protect(promhttp.HandlerFor(reqs.Gatherer, promhttp.HandlerOpts{})))
	mux.Handle("GET /status", protect(http.HandlerFunc(s.status)))
	mux.Handle("GET /ui", protect(http.HandlerFunc(s.ui)))
	if cfg.Pprof {
		// Profiles and debug dumps: to loopback connections only (kubectl port-forward).
		mux.Handle("/debug/pprof/", loopbackOnly(http.HandlerFunc(pprof.Index)))
		mux.Handle("/debug/pprof/cmdline", loopbackOnly(http.HandlerFunc(pprof.Cmdline)))
		mux.Handle("/debug/pprof/profile", loopbackOnly(http.HandlerFunc(pprof.Profile)))
		mux.Handle("/debug/pprof/symbol", loopbackOnly(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("/debug/pprof/trace", loopbackOnly(http.HandlerFunc(pprof.Trace)))
		for _, d := range reqs.Debug {
			mux.Handle("GET "+d.Path, loopbackOnly(d.Handler))
		}
	}
	s.http.Server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.http.OnServeError = func(err error) { s.log.Error("status server stopped", zap.Error(err)) }
	return Provides{Comp: s, Start: s.start, Stop: s.http.Shutdown}, nil
}

func (s *server) Addr() string { return s.http.Addr() }

func (s *server) start(context.Context) error {
	addr, err := s.http.Listen(s.addr)
	if err != nil {
		return fmt.Errorf("status server on %s: %w", s.addr, err)
	}
	s.log.Info("status server listening", zap.String("addr", addr.String()))
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
	doc := s.document()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		s.log.Debug("write /status", zap.Error(err))
	}
}

// document is the /status document, filled by every section (also the /ui page's agent part).
func (s *server) document() def.Document {
	doc := def.Document{Version: s.version}
	for _, sec := range s.sections {
		sec.Fill(&doc)
	}
	return doc
}
