// Package impl implements the admission HTTPS server, its certificates and the registration
// of its webhooks with the apiserver.
package impl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/comp/admission/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	leaderdef "github.com/lazyscale/lazyscale/comp/leaderelection/def"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	"github.com/lazyscale/lazyscale/lifecycle"
)

// Requires is what the admission server needs.
type Requires struct {
	Config     configdef.Component
	Logger     *zap.Logger
	Kube       kubernetes.Interface
	Registerer prometheus.Registerer
	// Leader decides who writes the webhook configuration and the certificate Secret.
	Leader   leaderdef.Component
	Webhooks []def.Webhook
}

// Provides is what the admission server gives.
type Provides struct {
	Comp    def.Component
	Start   func(context.Context) error
	Stop    func(context.Context) error
	Section statusdef.Section
}

// StatusReporter is implemented by webhooks that add fields to the "webhook" /status section.
type StatusReporter interface {
	Status() map[string]any
}

type server struct {
	cfg       configdef.AdmissionConfig
	log       *zap.Logger
	kube      kubernetes.Interface
	leader    leaderdef.Component
	webhooks  []def.Webhook
	certs     *certSource
	self      *selfManaged // nil in files mode
	files     *filesSource // nil in self-managed mode
	registrar *registrar
	http      lifecycle.HTTPServer
	routines  lifecycle.Routines
	// demandLeadership starts, once, the loop that does the leader's writes. It is called
	// when there is something to write: a certificate missing or due, an entry wanted. A
	// dormant replica whose certificate is in its Secret stands for no election.
	demandLeadership func()
}

var _ def.Component = (*server)(nil)

// NewComponent builds the server. Nothing listens and nothing is registered before Start.
func NewComponent(reqs Requires) (Provides, error) {
	cfg := reqs.Config.Get().Admission
	s := &server{cfg: cfg, log: reqs.Logger.Named("admission"), kube: reqs.Kube, leader: reqs.Leader, webhooks: reqs.Webhooks}
	section := statusdef.Section{Name: "webhook", Value: s.status}
	if !cfg.Enabled || len(reqs.Webhooks) == 0 {
		// Nothing to serve (admission disabled, or no webhook enabled): no port, no certificate,
		// no request to the apiserver.
		return Provides{Comp: s, Start: func(context.Context) error {
			s.log.Info("admission server not started", zap.Bool("enabled", cfg.Enabled), zap.Int("webhooks", len(reqs.Webhooks)))
			return nil
		}, Stop: s.routines.Stop, Section: section}, nil
	}
	m, err := newMetrics(reqs.Registerer)
	if err != nil {
		return Provides{}, fmt.Errorf("register admission metrics: %w", err)
	}
	mux := http.NewServeMux()
	seen := map[string]bool{}
	for _, w := range reqs.Webhooks {
		if seen[w.Path()] || seen[w.Name()] {
			return Provides{}, fmt.Errorf("two admission webhooks share the name %q or path %q", w.Name(), w.Path())
		}
		seen[w.Path()], seen[w.Name()] = true, true
		mux.Handle(w.Path(), &reviewHandler{webhook: w, log: s.log, metrics: m.forWebhook(w.Name())})
	}
	switch cfg.Certificate.Mode {
	case configdef.CertFiles:
		s.files = newFilesSource(cfg.Certificate.Dir, s.log)
		s.certs = s.files.src
	default:
		hosts, err := certHosts(cfg)
		if err != nil {
			return Provides{}, err
		}
		s.self = newSelfManaged(reqs.Kube, cfg.ServiceNamespace, cfg.Certificate.SecretName, hosts, cfg.Certificate.Validity, reqs.Leader.IsLeader, s.log)
		s.certs = s.self.src
	}
	s.certs.handshakes = m.handshakes
	s.demandLeadership = sync.OnceFunc(func() {
		s.routines.Go(func(ctx context.Context) {
			leaderdef.WhileLeading(ctx, s.leader, func(leading context.Context) {
				s.certs.kick() // a new leader may have a certificate to issue
				if s.registrar != nil {
					s.registrar.run(leading)
				}
			})
		})
	})
	if s.self != nil {
		s.self.needWriter = s.demandLeadership
	}
	if cfg.Register != configdef.RegisterNever {
		s.registrar = newRegistrar(reqs.Kube, cfg, reqs.Webhooks, s.CABundle, s.log)
		s.registrar.onWanted = s.demandLeadership
		// A new CA must reach the apiserver before it meets a certificate signed by it.
		s.certs.onChange = func(*servingCert) { s.registrar.poke() }
	}
	s.http.OnServeError = func(err error) { s.log.Error("admission server stopped", zap.Error(err)) }
	s.http.Server = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       90 * time.Second,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certs.getCertificate,
		},
	}
	return Provides{Comp: s, Start: s.start, Stop: s.stop, Section: section}, nil
}

// certHosts are the names the apiserver may use: the service's DNS names and the URL's host.
func certHosts(cfg configdef.AdmissionConfig) ([]string, error) {
	svc, ns := cfg.ServiceName, cfg.ServiceNamespace
	hosts := []string{svc + "." + ns + ".svc", svc, svc + "." + ns, svc + "." + ns + ".svc.cluster.local"}
	if cfg.URL != "" {
		u, err := url.Parse(cfg.URL)
		if err != nil {
			return nil, &configdef.Error{Key: "admission.url", Err: err}
		}
		hosts = append([]string{u.Hostname()}, hosts...)
	}
	return hosts, nil
}

func (s *server) start(ctx context.Context) error {
	// The certificate must exist before the first review. Reading the Secret is bounded: an
	// unreachable apiserver must not keep lazyscale from starting, and a fresh certificate in
	// memory serves just as well.
	loadCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var err error
	if s.self != nil {
		err = s.self.load(loadCtx)
		if err != nil && s.leader.Status().Enabled {
			// A follower (or a replica whose election is still running) serves the leader's
			// certificate once the Secret has it; until then TLS handshakes fail and, with
			// failurePolicy Ignore, pods are admitted unchanged.
			s.log.Info("waiting for the leader's webhook certificate", zap.String("secret", s.cfg.ServiceNamespace+"/"+s.cfg.Certificate.SecretName), zap.Error(err))
			err = nil
		}
	} else {
		err = s.files.reload()
	}
	if err != nil {
		return fmt.Errorf("admission certificate: %w", err)
	}
	addr := net.JoinHostPort(s.cfg.BindAddress, strconv.Itoa(s.cfg.Port))
	bound, err := s.http.Listen(addr)
	if err != nil {
		return fmt.Errorf("admission server on %s: %w", addr, err)
	}
	s.routines.Go(s.certs.run)
	if s.registrar != nil {
		s.registrar.watchWanted(s.routines.Go)
	}
	s.log.Info("admission server listening", zap.String("addr", bound.String()),
		zap.String("register", s.cfg.Register), zap.String("certificate", s.cfg.Certificate.Mode))
	return nil
}

// stop drains in-flight reviews (bounded by ctx), then stops rotation and registration. The
// webhook configuration is left in place: with failurePolicy Ignore, pods are admitted while
// lazyscale is away, and the next start serves again without a registration gap.
func (s *server) stop(ctx context.Context) error {
	return errors.Join(s.http.Shutdown(ctx), s.routines.Stop(ctx))
}

func (s *server) Addr() string { return s.http.Addr() }

func (s *server) CABundle() []byte {
	if s.certs == nil {
		return nil
	}
	if c := s.certs.current.Load(); c != nil {
		return c.caPEM
	}
	return nil
}

func (s *server) CertificateNotAfter() time.Time {
	if s.certs == nil {
		return time.Time{}
	}
	if c := s.certs.current.Load(); c != nil {
		return c.notAfter
	}
	return time.Time{}
}

func (s *server) status() any {
	out := map[string]any{"enabled": s.cfg.Enabled && len(s.webhooks) > 0, "register": s.cfg.Register}
	if s.certs == nil {
		return out
	}
	registered := map[string]bool{}
	for _, w := range s.webhooks {
		registered[w.Name()] = s.registrar != nil && s.registrar.isRegistered(w.Name())
		if r, ok := w.(StatusReporter); ok {
			for k, v := range r.Status() {
				out[k] = v
			}
		}
	}
	out["registered"] = registered
	if na := s.CertificateNotAfter(); !na.IsZero() {
		out["certificate"] = map[string]any{"mode": s.cfg.Certificate.Mode, "not_after": na, "expires_in": time.Until(na).Round(time.Second).String()}
	}
	return out
}
