package impl

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// servingCert is one immutable generation of the webhook server's certificate.
type servingCert struct {
	cert     tls.Certificate
	caPEM    []byte
	notAfter time.Time
}

// certSource serves the current certificate and keeps it fresh in the background.
type certSource struct {
	current atomic.Pointer[servingCert]
	// refresh is called periodically; it may replace current.
	refresh  func(ctx context.Context) error
	interval time.Duration
	log      *zap.Logger
	hooks    certHooks
	// kicked asks for a refresh now (e.g. on becoming leader).
	kicked notifier
}

// certHooks are what a certificate source reports to: given at construction.
type certHooks struct {
	// onChange is called when a new certificate is served (nil: nobody listens).
	onChange func(*servingCert)
	// handshakes counts TLS handshakes: a client that does not reuse connections pays one
	// per review (nil: not counted).
	handshakes prometheus.Counter
}

func newCertSource(refresh func(context.Context) error, interval time.Duration, hooks certHooks, log *zap.Logger) *certSource {
	return &certSource{refresh: refresh, interval: interval, hooks: hooks, log: log, kicked: newNotifier()}
}

// caBundle is the PEM CA of the current certificate, nil before the first.
func (s *certSource) caBundle() []byte {
	if c := s.current.Load(); c != nil {
		return c.caPEM
	}
	return nil
}

// notAfter is when the current certificate expires, zero before the first.
func (s *certSource) notAfter() time.Time {
	if c := s.current.Load(); c != nil {
		return c.notAfter
	}
	return time.Time{}
}

func (s *certSource) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if s.hooks.handshakes != nil {
		s.hooks.handshakes.Inc()
	}
	c := s.current.Load()
	if c == nil {
		return nil, errors.New("no serving certificate yet")
	}
	return &c.cert, nil
}

func (s *certSource) set(c *servingCert) {
	prev := s.current.Swap(c)
	if prev == nil || !bytes.Equal(prev.cert.Certificate[0], c.cert.Certificate[0]) {
		s.log.Info("serving certificate loaded", zap.Time("not_after", c.notAfter))
		if s.hooks.onChange != nil {
			s.hooks.onChange(c)
		}
	}
}

// kick asks run for a refresh now; it never blocks.
func (s *certSource) kick() { s.kicked.notify() }

// run refreshes until ctx is done: every interval, every second while there is no
// certificate yet (a follower waiting for the leader's), and when kicked. Failures are logged
// and retried.
func (s *certSource) run(ctx context.Context) {
	for {
		next := s.interval
		if s.current.Load() == nil {
			next = min(next, time.Second)
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-s.kicked:
			t.Stop()
		}
		if err := s.refresh(ctx); err != nil {
			s.log.Warn("certificate refresh failed; serving the current one", zap.Error(err))
		}
	}
}

// ---- self-managed ----

// errNoCertificateYet: a follower found no usable certificate in the Secret; the leader
// writes it.
var errNoCertificateYet = errors.New("no valid certificate in the Secret yet; the leader writes it")

// selfManaged keeps a CA and a serving certificate in a Secret. The writer (the leader, or
// the only replica when leader election is off) creates and rotates them; followers serve
// what the Secret holds, so every replica's certificate verifies against the one caBundle.
type selfManaged struct {
	// writer reports whether this replica may write the Secret now; needWriter is called
	// when a write is due and this replica may not write (someone must stand for election).
	writer     func() bool
	needWriter func()
	kube       kubernetes.Interface
	namespace  string
	secretName string
	hosts      []string
	validity   time.Duration
	log        *zap.Logger
	src        *certSource

	mu       sync.Mutex // guards the fields below; issuing is rare
	ca       *x509.Certificate
	caKey    *ecdsa.PrivateKey
	caPEM    []byte
	warnedNS bool
}

// newSelfManaged: writer reports whether this replica may write the Secret now; needWriter
// is called when a write is due and it may not.
func newSelfManaged(kube kubernetes.Interface, namespace, secretName string, hosts []string, validity time.Duration,
	writer func() bool, needWriter func(), hooks certHooks, log *zap.Logger) *selfManaged {
	m := &selfManaged{writer: writer, needWriter: needWriter, kube: kube, namespace: namespace, secretName: secretName, hosts: hosts, validity: validity, log: log}
	m.src = newCertSource(m.refresh, min(max(validity/10, time.Second), time.Hour), hooks, log)
	return m
}

// load serves the Secret's CA and certificate when they are valid for our hosts (and, for
// the writer, not due for renewal). Otherwise the writer generates what is missing and
// stores it back, and a follower returns errNoCertificateYet.
func (m *selfManaged) load(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	writer := m.writer()
	sec, err := m.kube.CoreV1().Secrets(m.namespace).Get(ctx, m.secretName, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		if !writer {
			return fmt.Errorf("read the certificate Secret: %w", err)
		}
		m.log.Warn("cannot read the certificate Secret; generating in memory", zap.String("secret", m.namespace+"/"+m.secretName), zap.Error(err))
	}
	if err == nil {
		if ca, key, caPEM, perr := parseCA(sec.Data["ca.crt"], sec.Data["ca.key"]); perr == nil {
			m.ca, m.caKey, m.caPEM = ca, key, caPEM
			if c, cerr := m.parseServing(sec.Data["tls.crt"], sec.Data["tls.key"]); cerr == nil && (!m.due(c) || !writer && time.Now().Before(c.notAfter)) {
				m.src.set(c)
				if m.due(c) {
					m.needWriter() // a follower serves it, but someone must renew it
				}
				return nil
			}
		}
	}
	if !writer {
		m.needWriter()
		return errNoCertificateYet
	}
	if m.ca == nil {
		if err := m.newCA(); err != nil {
			return err
		}
	}
	return m.issueLocked(ctx)
}

// pending: no certificate yet, or it is due for rotation: someone must write.
func (m *selfManaged) pending() bool {
	c := m.src.current.Load()
	return c == nil || m.due(c)
}

func (m *selfManaged) due(c *servingCert) bool {
	return time.Until(c.notAfter) < m.validity/3
}

// refresh: the writer rotates when due (re-reading the Secret first: a previous leader may
// have rotated already); a follower re-reads the Secret, so it serves the leader's latest.
func (m *selfManaged) refresh(ctx context.Context) error {
	if c := m.src.current.Load(); m.writer() && c != nil && !m.due(c) {
		return nil
	}
	return m.load(ctx)
}

func (m *selfManaged) newCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: "lazyscale-webhook-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create CA: %w", err)
	}
	m.ca, _ = x509.ParseCertificate(der)
	m.caKey = key
	m.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return nil
}

func (m *selfManaged) issueLocked(ctx context.Context) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: m.hosts[0]},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(m.validity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range m.hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.ca, &key.PublicKey, m.caKey)
	if err != nil {
		return fmt.Errorf("sign serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	c, err := m.parseServing(certPEM, keyPEM)
	if err != nil {
		return err
	}
	m.src.set(c)
	m.save(ctx, certPEM, keyPEM)
	return nil
}

// save stores the CA and certificate so that restarts and other replicas reuse them. A
// failure is not fatal: the certificate in memory serves, and the next rotation retries.
func (m *selfManaged) save(ctx context.Context, certPEM, keyPEM []byte) {
	caKeyDER, err := x509.MarshalECPrivateKey(m.caKey)
	if err != nil {
		return
	}
	data := map[string][]byte{
		"ca.crt": m.caPEM, "ca.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: caKeyDER}),
		"tls.crt": certPEM, "tls.key": keyPEM,
	}
	secrets := m.kube.CoreV1().Secrets(m.namespace)
	sec, err := secrets.Get(ctx, m.secretName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: m.secretName, Namespace: m.namespace},
			Type:       corev1.SecretTypeOpaque, Data: data,
		}, metav1.CreateOptions{})
	case err == nil:
		sec = sec.DeepCopy()
		sec.Data = data
		_, err = secrets.Update(ctx, sec, metav1.UpdateOptions{})
	}
	if err != nil && !m.warnedNS {
		m.warnedNS = true
		m.log.Warn("cannot store the webhook certificate in its Secret; serving it from memory",
			zap.String("secret", m.namespace+"/"+m.secretName), zap.Error(err))
	}
}

func (m *selfManaged) parseServing(certPEM, keyPEM []byte) (*servingCert, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	for _, h := range m.hosts {
		if err := leaf.VerifyHostname(h); err != nil {
			return nil, fmt.Errorf("certificate does not cover %s", h)
		}
	}
	if m.ca != nil {
		if err := leaf.CheckSignatureFrom(m.ca); err != nil {
			return nil, fmt.Errorf("certificate not signed by the CA: %w", err)
		}
	}
	pair.Leaf = leaf
	return &servingCert{cert: pair, caPEM: m.caPEM, notAfter: leaf.NotAfter}, nil
}

func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, nil, errors.New("no CA in Secret")
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, nil, err
	}
	if time.Until(ca.NotAfter) < 30*24*time.Hour {
		return nil, nil, nil, errors.New("CA expires within 30 days")
	}
	return ca, key, certPEM, nil
}

func randomSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// ---- files ----

type filesSource struct {
	dir     string
	src     *certSource
	modTime time.Time
}

func newFilesSource(dir string, hooks certHooks, log *zap.Logger) *filesSource {
	f := &filesSource{dir: dir}
	f.src = newCertSource(func(context.Context) error { return f.reload() }, 10*time.Second, hooks, log)
	return f
}

// reload reads the files again when any of them changed.
func (f *filesSource) reload() error {
	var latest time.Time
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if st, err := os.Stat(filepath.Join(f.dir, name)); err == nil && st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	if !latest.After(f.modTime) && f.src.current.Load() != nil {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(f.dir, "tls.crt"), filepath.Join(f.dir, "tls.key"))
	if err != nil {
		return fmt.Errorf("load certificate from %s: %w", f.dir, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	pair.Leaf = leaf
	caPEM, err := os.ReadFile(filepath.Join(f.dir, "ca.crt"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f.modTime = latest
	f.src.set(&servingCert{cert: pair, caPEM: caPEM, notAfter: leaf.NotAfter})
	return nil
}
