package controlplane

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/lazyscale/lazyscale/test/testpki"
)

// pki is the control plane's certificates: one CA that signs the apiserver's serving cert and
// the admin client cert, plus the service-account signing key.
type pki struct {
	caCert, caKey           string
	servingCert, servingKey string
	adminCert, adminKey     string
	saKey, saPub            string
	// The aggregator's client certificate (front-proxy-client), from a CA of its own: how
	// the apiserver proves itself to aggregated servers such as metrics-server.
	frontProxyCA, proxyClientCert, proxyClientKey string
	// PEM contents, for clients that take certificates inline.
	caPEM, adminCertPEM, adminKeyPEM []byte
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

func newPKI(dir string) (*pki, error) {
	p := &pki{
		caCert: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key"),
		servingCert: filepath.Join(dir, "apiserver.crt"), servingKey: filepath.Join(dir, "apiserver.key"),
		adminCert: filepath.Join(dir, "admin.crt"), adminKey: filepath.Join(dir, "admin.key"),
		saKey: filepath.Join(dir, "sa.key"), saPub: filepath.Join(dir, "sa.pub"),
		frontProxyCA:    filepath.Join(dir, "front-proxy-ca.crt"),
		proxyClientCert: filepath.Join(dir, "front-proxy-client.crt"), proxyClientKey: filepath.Join(dir, "front-proxy-client.key"),
	}
	ca, err := testpki.NewCA("lazyscale-local-ca", 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	p.caPEM = ca.PEM
	caKeyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	if err := errors.Join(os.WriteFile(p.caCert, p.caPEM, 0o600), os.WriteFile(p.caKey, caKeyPEM, 0o600)); err != nil {
		return nil, err
	}
	issue := func(certPath, keyPath string, l testpki.Leaf) ([]byte, []byte, error) {
		certPEM, keyPEM, err := ca.Issue(l)
		if err != nil {
			return nil, nil, err
		}
		return certPEM, keyPEM, errors.Join(os.WriteFile(certPath, certPEM, 0o600), os.WriteFile(keyPath, keyPEM, 0o600))
	}
	if _, _, err := issue(p.servingCert, p.servingKey, testpki.Leaf{
		CommonName: "kube-apiserver", Validity: 365 * 24 * time.Hour,
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.0.0.1")},
	}); err != nil {
		return nil, err
	}
	if p.adminCertPEM, p.adminKeyPEM, err = issue(p.adminCert, p.adminKey, testpki.Leaf{
		CommonName: "admin", Organization: []string{"system:masters"}, Client: true, Validity: 365 * 24 * time.Hour,
	}); err != nil {
		return nil, err
	}

	fp, err := testpki.NewCA("lazyscale-local-front-proxy-ca", 10*365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	fpCert, fpKey, err := fp.Issue(testpki.Leaf{CommonName: "front-proxy-client", Client: true, Validity: 365 * 24 * time.Hour})
	if err != nil {
		return nil, err
	}
	if err := errors.Join(os.WriteFile(p.frontProxyCA, fp.PEM, 0o600), os.WriteFile(p.proxyClientCert, fpCert, 0o600),
		os.WriteFile(p.proxyClientKey, fpKey, 0o600)); err != nil {
		return nil, err
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.saKey, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey)); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	if err := writePEM(p.saPub, "PUBLIC KEY", pub); err != nil {
		return nil, err
	}
	return p, nil
}
