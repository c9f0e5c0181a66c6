// Package controlplane starts a real etcd and kube-apiserver on loopback, the same way for
// tests (test/integration, test/e2e, test/bench) and for `make run`, and on request
// kube-controller-manager, kube-scheduler, kwok's simulated nodes and metrics-server (Options).
// Without them, callers create pods themselves and write their status.
//
// The apiserver runs with the ServiceAccount admission plugin disabled (a bare control plane
// has nothing that creates a namespace's default ServiceAccount, and kwok runs no containers
// that would mount a token), and with an audit log of every request (except its own loopback
// client), which is how tests prove what lazyscale did or did not ask for.
package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configure Start.
type Options struct {
	// Dir holds data, certificates, logs and the kubeconfig; it must exist. Required.
	Dir string
	// BinDir holds etcd and kube-apiserver; empty means BinDir().
	BinDir string
	// Logs receives both processes' output; nil writes it to files in Dir.
	Logs io.Writer
	// APIServerFlags are extra kube-apiserver flags.
	APIServerFlags []string
	// InstallCRDs installs deploy/crds once the apiserver is ready.
	InstallCRDs bool
	// ControllerManager also starts kube-controller-manager (garbage collection, the
	// Deployment and ReplicaSet controllers, ServiceAccounts). Off by default: most tests
	// write pods and statuses themselves and want nothing else to act.
	ControllerManager bool
	// Nodes, when above zero, makes a cluster that runs workloads: kube-controller-manager,
	// kube-scheduler, and kwok simulating this many nodes (Ready, with leases) and running the
	// pods scheduled on them (Running and Ready, no containers).
	Nodes int
	// MetricsServer (with Nodes) also runs metrics-server, registered as the APIService
	// v1beta1.metrics.k8s.io: pod usage comes from kwok (SetUsage).
	MetricsServer bool
}

// ControlPlane is a running etcd + kube-apiserver.
type ControlPlane struct {
	// Kubeconfig is the path of an admin kubeconfig.
	Kubeconfig string
	// AuditLog is the path of the apiserver's JSON-lines audit log.
	AuditLog string
	// URL is the apiserver's https URL.
	URL string
	// Config is an admin rest.Config.
	Config *rest.Config

	etcd, apiserver, controllerManager, scheduler, kwok, metricsServer *exec.Cmd
	exited                                                             map[*exec.Cmd]chan error

	// apiserverStart starts kube-apiserver again with the same flags (the port, etcd, the
	// certificates), its output in a log of that name; restarts counts the restarts.
	apiserverStart func(name string) (*exec.Cmd, error)
	restarts       int

	// stopLoads ends the goroutine that splits shared loads (Usage.Shared); loadsDone is
	// closed when it has returned.
	stopLoads context.CancelFunc
	loadsDone chan struct{}
}

// Pids returns the process IDs of etcd and kube-apiserver, for reading their memory.
func (cp *ControlPlane) Pids() (etcd, apiserver int) {
	return cp.etcd.Process.Pid, cp.apiserver.Process.Pid
}

// BinDir returns $KUBEBUILDER_ASSETS if set, else bin/controlplane at the module root.
func BinDir() (string, error) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin", "controlplane"), nil
}

// KubectlPath returns kubectl from BinDir(), else the one `make controlplane` builds.
func KubectlPath() string {
	if dir, err := BinDir(); err == nil {
		if _, err := os.Stat(filepath.Join(dir, "kubectl")); err == nil {
			return filepath.Join(dir, "kubectl")
		}
	}
	if root, err := moduleRoot(); err == nil {
		return filepath.Join(root, "bin", "controlplane", "kubectl")
	}
	return "kubectl"
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.Contains("\n"+string(b), "\nmodule github.com/lazyscale/lazyscale\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("module root of github.com/lazyscale/lazyscale not found above the working directory")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  users: ["system:apiserver"]
- level: Metadata
`

// Start starts etcd and kube-apiserver and waits until the apiserver is ready. Stop must be
// called to end both processes; they also die with the calling process.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	if opts.Dir == "" {
		return nil, errors.New("controlplane: Options.Dir is required")
	}
	bin := opts.BinDir
	if bin == "" {
		var err error
		if bin, err = BinDir(); err != nil {
			return nil, err
		}
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			return nil, fmt.Errorf("controlplane: %s not found in %s (run `make controlplane` or set KUBEBUILDER_ASSETS): %w", b, bin, err)
		}
	}
	certDir := filepath.Join(opts.Dir, "pki")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	p, err := newPKI(certDir)
	if err != nil {
		return nil, fmt.Errorf("controlplane: certificates: %w", err)
	}
	cp := &ControlPlane{
		AuditLog:   filepath.Join(opts.Dir, "audit.log"),
		Kubeconfig: filepath.Join(opts.Dir, "kubeconfig"),
		exited:     map[*exec.Cmd]chan error{},
	}
	policy := filepath.Join(opts.Dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, err
	}

	etcdPort, err := freePort()
	if err != nil {
		return nil, err
	}
	peerPort, err := freePort()
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	cp.etcd, err = cp.spawn(opts, "etcd", filepath.Join(bin, "etcd"),
		"--name=default",
		"--data-dir="+filepath.Join(opts.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync=true",
		"--quota-backend-bytes=8589934592",
		"--log-level=warn",
	)
	if err != nil {
		return nil, err
	}
	if err := cp.waitHTTP(ctx, cp.etcd, etcdURL+"/health", nil); err != nil {
		cp.Stop()
		return nil, fmt.Errorf("controlplane: etcd not healthy: %w", err)
	}

	apiPort, err := freePort()
	if err != nil {
		cp.Stop()
		return nil, err
	}
	cp.URL = "https://127.0.0.1:" + strconv.Itoa(apiPort)
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(apiPort),
		"--tls-cert-file=" + p.servingCert, "--tls-private-key-file=" + p.servingKey,
		"--client-ca-file=" + p.caCert,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + p.saPub,
		"--service-account-signing-key-file=" + p.saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--allow-privileged=true",
		// Loopback advertise addresses are refused by the endpoint reconciler; nothing here
		// needs the kubernetes Service endpoints.
		"--endpoint-reconciler-type=none",
		"--audit-policy-file=" + policy,
		"--audit-log-path=" + cp.AuditLog,
		"--audit-log-mode=blocking",
		"--audit-log-format=json",
		// No rotation: with the default (0) the apiserver's log writer rotates at 100 MB, and
		// readers that count requests from an offset (the bench at 50,000 pods) would miss them.
		"--audit-log-maxsize=1000000",
		// The aggregation layer, as a real cluster has it (metrics-server authenticates the
		// apiserver's proxied requests by this client certificate and these headers).
		"--requestheader-client-ca-file=" + p.frontProxyCA,
		"--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + p.proxyClientCert, "--proxy-client-key-file=" + p.proxyClientKey,
		"--v=0",
	}
	cp.apiserverStart = func(name string) (*exec.Cmd, error) {
		return cp.spawn(opts, name, filepath.Join(bin, "kube-apiserver"), append(args, opts.APIServerFlags...)...)
	}
	cp.apiserver, err = cp.apiserverStart("kube-apiserver")
	if err != nil {
		cp.Stop()
		return nil, err
	}

	// Certificates inline, not as files: client-go watches client-certificate files with a
	// process-wide goroutine per transport that never stops.
	cp.Config = &rest.Config{
		Host:            cp.URL,
		TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM, CertData: p.adminCertPEM, KeyData: p.adminKeyPEM},
		QPS:             200, Burst: 400,
	}
	if err := cp.writeKubeconfig(p); err != nil {
		cp.Stop()
		return nil, err
	}
	httpClient, err := rest.HTTPClientFor(cp.Config)
	if err != nil {
		cp.Stop()
		return nil, err
	}
	if err := cp.waitHTTP(ctx, cp.apiserver, cp.URL+"/readyz", httpClient); err != nil {
		cp.Stop()
		return nil, fmt.Errorf("controlplane: kube-apiserver not ready: %w", err)
	}
	// /readyz is green before the default namespace exists; callers rely on it.
	kube, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		cp.Stop()
		return nil, err
	}
	if err := poll(ctx, 60*time.Second, func() bool {
		_, err := kube.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}); err != nil {
		cp.Stop()
		return nil, fmt.Errorf("controlplane: default namespace never appeared: %w", err)
	}
	if opts.ControllerManager || opts.Nodes > 0 {
		if err := cp.startControllerManager(ctx, opts, bin, p); err != nil {
			cp.Stop()
			return nil, fmt.Errorf("controlplane: %w", err)
		}
	}
	if opts.Nodes > 0 {
		if err := cp.startWorkloadRunners(ctx, opts, bin, kube); err != nil {
			cp.Stop()
			return nil, fmt.Errorf("controlplane: %w", err)
		}
	}
	if opts.Nodes > 0 && opts.MetricsServer {
		loadCtx, cancel := context.WithCancel(context.Background())
		cp.stopLoads, cp.loadsDone = cancel, make(chan struct{})
		go func() { defer close(cp.loadsDone); splitLoads(loadCtx, cp.Config) }()
	}
	if opts.InstallCRDs {
		dir, err := CRDDir()
		if err == nil {
			err = InstallCRDs(ctx, cp.Config, dir)
		}
		if err != nil {
			cp.Stop()
			return nil, fmt.Errorf("controlplane: %w", err)
		}
	}
	return cp, nil
}

func (cp *ControlPlane) spawn(opts Options, name, path string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(path, args...)
	out := opts.Logs
	if out == nil {
		f, err := os.Create(filepath.Join(opts.Dir, name+".log"))
		if err != nil {
			return nil, err
		}
		out = f
	}
	cmd.Stdout, cmd.Stderr = out, out
	// The processes must not outlive a test binary killed by a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("controlplane: start %s: %w", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	cp.exited[cmd] = done
	return cmd, nil
}

// loopbackHealth reads the health endpoints of the processes this package started, which serve
// them over TLS with self-signed certificates on loopback.
var loopbackHealth = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback health check of a test process

func (cp *ControlPlane) waitHTTP(ctx context.Context, proc *exec.Cmd, url string, client *http.Client) error {
	if client == nil {
		client = http.DefaultClient
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-cp.exited[proc]:
			cp.exited[proc] <- err
			return fmt.Errorf("process exited: %v (see its log)", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not OK after 90s", url)
		}
	}
}

func (cp *ControlPlane) writeKubeconfig(*pki) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lazyscale-local"] = &clientcmdapi.Cluster{Server: cp.URL, CertificateAuthorityData: cp.Config.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cp.Config.CertData, ClientKeyData: cp.Config.KeyData}
	cfg.Contexts["lazyscale-local"] = &clientcmdapi.Context{Cluster: "lazyscale-local", AuthInfo: "admin"}
	cfg.CurrentContext = "lazyscale-local"
	return clientcmd.WriteToFile(*cfg, cp.Kubeconfig)
}

// startControllerManager starts kube-controller-manager as the admin (a test cluster: one
// identity is enough) and waits for its /healthz, checking that it is alive meanwhile.
func (cp *ControlPlane) startControllerManager(ctx context.Context, opts Options, bin string, p *pki) error {
	path, err := builtBinary(bin, "kube-controller-manager")
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	cp.controllerManager, err = cp.spawn(opts, "kube-controller-manager", path,
		"--kubeconfig="+cp.Kubeconfig,
		"--authentication-kubeconfig="+cp.Kubeconfig, "--authorization-kubeconfig="+cp.Kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(port),
		"--service-account-private-key-file="+p.saKey, "--root-ca-file="+p.caCert,
		"--cluster-signing-cert-file="+p.caCert, "--cluster-signing-key-file="+p.caKey,
		"--use-service-account-credentials", "--leader-elect=false",
		"--kube-api-qps=300", "--kube-api-burst=500",
		"--v=0",
	)
	if err != nil {
		return err
	}
	if err := cp.waitHTTP(ctx, cp.controllerManager, "https://127.0.0.1:"+strconv.Itoa(port)+"/healthz", loopbackHealth); err != nil {
		return fmt.Errorf("kube-controller-manager not healthy: %w", err)
	}
	return nil
}

// builtBinary is name in bin, else in bin/controlplane (make controlplane builds what
// KUBEBUILDER_ASSETS does not have).
func builtBinary(bin, name string) (string, error) {
	path := filepath.Join(bin, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if root, err := moduleRoot(); err == nil {
		path = filepath.Join(root, "bin", "controlplane", name)
	}
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%s not found (run `make controlplane`): %w", name, err)
	}
	return path, nil
}

// Stop ends the split of shared loads, then terminates metrics-server, kwok, the scheduler, the
// controller-manager, the apiserver, then etcd, waiting up to 15 s for each. Idempotent.
func (cp *ControlPlane) Stop() {
	if cp.stopLoads != nil {
		cp.stopLoads()
		<-cp.loadsDone
	}
	for _, proc := range []*exec.Cmd{cp.metricsServer, cp.kwok, cp.scheduler, cp.controllerManager, cp.apiserver, cp.etcd} {
		if proc == nil || proc.Process == nil {
			continue
		}
		done := cp.exited[proc]
		_ = proc.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			done <- err
		case <-time.After(15 * time.Second):
			_ = proc.Process.Kill()
			err := <-done
			done <- err
		}
	}
}

// KillAPIServer kills kube-apiserver (SIGKILL: no graceful shutdown, open watches cut) and
// waits until it has exited. etcd and the other processes keep running.
func (cp *ControlPlane) KillAPIServer() error {
	done := cp.exited[cp.apiserver]
	select {
	case err := <-done:
		done <- err
		return nil // exited already (after a StopAPIServer)
	default:
	}
	if err := cp.apiserver.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("controlplane: kill kube-apiserver: %w", err)
	}
	err := <-done
	done <- err
	return nil
}

// StopAPIServer sends kube-apiserver SIGTERM and returns at once: it shuts down gracefully
// (it stops serving after its shutdown delay), as in a rolling update of the control plane.
// KillAPIServer cuts it short.
func (cp *ControlPlane) StopAPIServer() error {
	return cp.apiserver.Process.Signal(syscall.SIGTERM)
}

// RestartAPIServer starts kube-apiserver again, on the same address and etcd, once the last
// one has exited, and waits until it is ready. Its log is kube-apiserver.restart-N.log.
func (cp *ControlPlane) RestartAPIServer(ctx context.Context) error {
	select {
	case err := <-cp.exited[cp.apiserver]:
		cp.exited[cp.apiserver] <- err
	default:
		return errors.New("controlplane: kube-apiserver is still running")
	}
	cp.restarts++
	proc, err := cp.apiserverStart(fmt.Sprintf("kube-apiserver.restart-%d", cp.restarts))
	if err != nil {
		return err
	}
	cp.apiserver = proc
	httpClient, err := rest.HTTPClientFor(cp.Config)
	if err != nil {
		return err
	}
	return cp.waitHTTP(ctx, cp.apiserver, cp.URL+"/readyz", httpClient)
}

func poll(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil
}

// waitAlive polls cond for up to 90 s and fails at once if proc exits meanwhile: a crashed
// process looks like a slow one otherwise.
func (cp *ControlPlane) waitAlive(ctx context.Context, proc *exec.Cmd, cond func() bool, what string) error {
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		select {
		case err := <-cp.exited[proc]:
			cp.exited[proc] <- err
			return fmt.Errorf("%s: process exited: %v (see its log)", what, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after 90s", what)
		}
	}
	return nil
}
