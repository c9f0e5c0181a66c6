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

// Provides is what the admission server gives: its lifecycle hooks and the server's fields of
// the "webhook" /status section (the webhooks fill their own).
type Provides struct {
	Comp       def.Component
	Start      func(context.Context) error
	Stop       func(context.Context) error
	FillStatus func(*def.Status)
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
	// leaderWork is fired when there is something for the leader to write: a certificate
	// missing or due, an entry wanted. Only then does this replica stand for election: a
	// dormant replica whose certificate is in its Secret never touches the Lease.
	leaderWork *latch
}

var _ def.Component = (*server)(nil)

// NewComponent builds the server. Nothing listens and nothing is registered before Start.
func NewComponent(reqs Requires) (Provides, error) {
	cfg := reqs.Config.Get().Admission
	s := &server{cfg: cfg, log: reqs.Logger.Named("admission"), kube: reqs.Kube, leader: reqs.Leader, webhooks: reqs.Webhooks, leaderWork: newLatch()}
	if !cfg.Enabled || len(reqs.Webhooks) == 0 {
		// Nothing to serve (admission disabled, or no webhook enabled): no port, no certificate,
		// no request to the apiserver.
		return Provides{Comp: s, Start: func(context.Context) error {
			s.log.Info("admission server not started", zap.Bool("enabled", cfg.Enabled), zap.Int("webhooks", len(reqs.Webhooks)))
			return nil
		}, Stop: s.routines.Stop, FillStatus: s.fillStatus}, nil
	}
	m, err := newMetrics(reqs.Registerer, time.Duration(cfg.TimeoutSeconds)*time.Second)
	if err != nil {
		return Provides{}, fmt.Errorf("register admission metrics: %w", err)
	}
	if err := reqs.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lazyscale_admission_certificate_not_after_timestamp_seconds",
		Help: "When the serving certificate the admission server presents expires (Unix time); 0 before it has one.",
	}, func() float64 {
		if na := s.CertificateNotAfter(); !na.IsZero() {
			return float64(na.Unix())
		}
		return 0
	})); err != nil {
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
	// A new CA must reach the apiserver before it meets a certificate signed by it: a new
	// certificate wakes the registrar.
	caChanged := newNotifier()
	hooks := certHooks{handshakes: m.handshakes, onChange: func(*servingCert) { caChanged.notify() }}
	switch cfg.Certificate.Mode {
	case configdef.CertFiles:
		s.files = newFilesSource(cfg.Certificate.Dir, hooks, s.log)
		s.certs = s.files.src
	default:
		hosts, err := certHosts(cfg)
		if err != nil {
			return Provides{}, err
		}
		s.self = newSelfManaged(reqs.Kube, cfg.ServiceNamespace, cfg.Certificate.SecretName, hosts, cfg.Certificate.Validity,
			reqs.Leader.IsLeader, s.leaderWork.fire, hooks, s.log)
		s.certs = s.self.src
	}
	if cfg.Register != configdef.RegisterNever {
		s.registrar = newRegistrar(reqs.Kube, cfg, reqs.Webhooks, s.certs.caBundle, caChanged, s.leaderWork.fire, s.log)
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
	return Provides{Comp: s, Start: s.start, Stop: s.stop, FillStatus: s.fillStatus}, nil
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
	s.routines.Go(s.leaderWrites)
	if s.registrar != nil {
		s.registrar.watchScopes()
		s.registrar.watchWanted(s.routines.Go)
	}
	s.log.Info("admission server listening", zap.String("addr", bound.String()),
		zap.String("register", s.cfg.Register), zap.String("certificate", s.cfg.Certificate.Mode))
	return nil
}

// leaderWrites does the leader's writes (certificate, registration) under each leadership
// term while there is something to write, and stops asking for leadership once nothing is
// left: no entry wanted or left to remove, no certificate to issue. With nothing else to
// write (the gate closed), the replica then gives its Lease up.
func (s *server) leaderWrites(ctx context.Context) {
	for {
		select {
		case <-s.leaderWork.done():
		case <-ctx.Done():
			return
		}
		work, done := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { s.whileWorkLeft(work, done) })
		leaderdef.WhileLeading(work, s.leader, func(leading context.Context) {
			s.certs.kick() // a new leader may have a certificate to issue
			if s.registrar != nil {
				s.registrar.run(leading)
			}
		})
		done()
		wg.Wait()
		s.leaderWork.rearm()
		if ctx.Err() != nil {
			return
		}
		if !s.idle() {
			s.leaderWork.fire() // work came while this round ended
		}
	}
}

// leaderIdleCheck is how often a replica with leader work checks whether any is left.
const leaderIdleCheck = time.Second

// whileWorkLeft calls done once nothing is left to write (twice in a row, a second apart, so
// that a write just asked for is not missed), or when ctx ends.
func (s *server) whileWorkLeft(ctx context.Context, done context.CancelFunc) {
	t := time.NewTicker(leaderIdleCheck)
	defer t.Stop()
	idleOnce := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.idle() {
			idleOnce = false
			continue
		}
		if idleOnce {
			done()
			return
		}
		idleOnce = true
	}
}

// idle: nothing for a leader to write: no webhook entry wanted or still registered, and a
// valid certificate that is not due for rotation (or certificates from files).
func (s *server) idle() bool {
	if s.registrar != nil && s.registrar.busy() {
		return false
	}
	return s.self == nil || !s.self.pending()
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
	return s.certs.caBundle()
}

func (s *server) CertificateNotAfter() time.Time {
	if s.certs == nil {
		return time.Time{}
	}
	return s.certs.notAfter()
}

// fillStatus sets the server's fields of the "webhook" section.
func (s *server) fillStatus(st *def.Status) {
	st.Enabled, st.Register = s.cfg.Enabled && len(s.webhooks) > 0, s.cfg.Register
	if s.certs == nil {
		return
	}
	st.Registered = map[string]bool{}
	for _, w := range s.webhooks {
		st.Registered[w.Name()] = s.registrar != nil && s.registrar.isRegistered(w.Name())
	}
	if na := s.CertificateNotAfter(); !na.IsZero() {
		st.Certificate = &def.CertificateStatus{Mode: s.cfg.Certificate.Mode, NotAfter: na, ExpiresIn: time.Until(na).Round(time.Second).String()}
	}
}
