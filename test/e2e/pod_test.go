package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/podrun"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// runAsPod runs the binary as the kubelet would run the first container of Deployment
// ns/name, applied in e: its args and env, the service links of ns's Services, and its
// ServiceAccount's token. The config file the pod mounts from a ConfigMap is read from the
// apiserver and written locally (the path in the args replaced), with extra merged over it:
// what only a test needs, such as loopback addresses. It returns the status address, the
// agent's output, and kill, which ends it at once (SIGKILL) and waits for it.
func runAsPod(t *testing.T, bin string, e *testenv.Env, ns, name string, extra map[string]any) (addr string, logs *syncBuffer, kill func()) {
	addr = "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	pod := podrun.Pod{Kube: e.Kube, Kubeconfig: e.CP.Kubeconfig, Namespace: ns, Deployment: name, PodName: name + "-6d4f9c7b8-x2k4q",
		Config: extra, Dir: t.TempDir()}
	cmd, err := pod.Command(context.Background(), bin, "--status-addr", addr)
	require.NoError(t, err)
	logs = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	kill = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
	}
	t.Cleanup(kill)
	require.Eventually(t, func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the agent exited: %v\n%s", err, logs)
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, testenv.WaitFor, 100*time.Millisecond, "never ready; logs:\n%s", logs)
	return addr, logs, kill
}

// loopbackAdmission is what only a test needs: the webhook on loopback, called by URL.
func loopbackAdmission(t *testing.T) map[string]any {
	port := testenv.FreePort(t)
	return map[string]any{"admission": map[string]any{"bind_address": "127.0.0.1", "port": port,
		"url": "https://127.0.0.1:" + strconv.Itoa(port)}}
}

// dpaActs creates a Deployment, its pods and a DPA in shop, and waits for the agent at addr to
// open the gate, collect the pods, write the DPA's status and patch a new pod through the
// apiserver's call to its webhook; then no request of the agent was refused by the apiserver.
func dpaActs(t *testing.T, e *testenv.Env, addr, token string, logs *syncBuffer) {
	ctx := context.Background()
	e.Namespace("shop", nil)
	_, err := e.Kube.AppsV1().Deployments("shop").Create(ctx, testenv.Deployment("shop", "cart", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	e.CreatePods("shop", "cart", 5)
	e.CreateDPA("shop", "cart", "cart")
	require.Eventually(t, func() bool {
		d, err := getStatusAs(addr, token)
		return err == nil && d.Gate.Open && d.PodCollection.Pods == 5 && d.Autoscaling.State == "running"
	}, testenv.WaitFor, 100*time.Millisecond, "logs:\n%s", logs)
	require.Eventually(t, func() bool {
		dpa, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop").Get(ctx, "cart", metav1.GetOptions{})
		return err == nil && dpa.Object["status"] != nil
	}, testenv.WaitFor, 100*time.Millisecond, "the leader acted: the DPA has a status")
	// The apiserver calls the agent's webhook, which patches a new pod of the workload.
	i := 0
	require.Eventually(t, func() bool {
		i++
		p, err := e.CreatePod("shop", "cart-7c9d8f6b5-new"+strconv.Itoa(i), map[string]string{"app": "cart", "pod-template-hash": "7c9d8f6b5"},
			metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "cart-7c9d8f6b5", UID: "rs-cart", Controller: testenv.Ptr(true)})
		require.NoError(t, err)
		return p.Annotations[v1alpha2.AutoscalerIDAnnotation] == "shop/cart"
	}, testenv.WaitFor, 200*time.Millisecond, "no pod patched by the webhook; logs:\n%s", logs)
	for _, r := range e.LazyscaleRequests("") {
		if r.ResponseStatus != nil {
			assert.NotEqual(t, http.StatusForbidden, r.ResponseStatus.Code, "refused by RBAC: %s %s", r.Verb, r.RequestURI)
		}
	}
}

// The binary runs as the shipped Deployment's container would (deploy/lazyscale.yaml, the
// chart's defaults): its args, its config from the ConfigMap, its env, the service-link
// variables a kubelet injects for the install's Services (among them
// LAZYSCALE_ADMISSION_PORT=tcp://<ip>:443, which once made it exit with code 2), and the
// shipped ServiceAccount's token. It becomes ready, opens the gate on a DPA, collects the pods,
// acts, and the apiserver refuses none of its requests. The webhook configuration it creates
// is owned by the install's ClusterRole, so deleting the install deletes it.
func TestBinaryAsItsPodRunsIt(t *testing.T) {
	bin := buildBinary(t)
	e := testenv.NewEnv(t, true)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	out, err := exec.Command(controlplane.KubectlPath(), "--kubeconfig", e.CP.Kubeconfig, "apply",
		"-f", filepath.Join(root, "deploy/lazyscale.yaml")).CombinedOutput()
	require.NoError(t, err, string(out))
	ctx := context.Background()
	d, err := e.Kube.AppsV1().Deployments("lazyscale").Get(ctx, "lazyscale", metav1.GetOptions{})
	require.NoError(t, err)
	assert.False(t, *d.Spec.Template.Spec.EnableServiceLinks, "the shipped pod asks for no service links")
	cmd, err := podrun.Pod{Kube: e.Kube, Kubeconfig: e.CP.Kubeconfig, Namespace: "lazyscale", Deployment: "lazyscale", Dir: t.TempDir()}.Command(ctx, bin)
	require.NoError(t, err)
	require.Contains(t, cmd.Env, "LAZYSCALE_ADMISSION_PORT=tcp://"+mustServiceIP(t, e, "lazyscale-admission")+":443", "the variable that collides with admission.port")

	addr, logs, _ := runAsPod(t, bin, e, "lazyscale", "lazyscale", loopbackAdmission(t))
	dpaActs(t, e, addr, saToken(t, e, "lazyscale", "lazyscale"), logs)
	statusPortProtected(t, bin, e, addr)

	role, err := e.Kube.RbacV1().ClusterRoles().Get(ctx, "lazyscale", metav1.GetOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		mwc, err := e.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "lazyscale-webhook", metav1.GetOptions{})
		return err == nil && len(mwc.OwnerReferences) == 1 && mwc.OwnerReferences[0].UID == role.UID
	}, testenv.WaitFor, 100*time.Millisecond, "the webhook configuration is owned by the ClusterRole")
}

func mustServiceIP(t *testing.T, e *testenv.Env, name string) string {
	svc, err := e.Kube.CoreV1().Services("lazyscale").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return svc.Spec.ClusterIP
}

// saToken is a token of ServiceAccount ns/name from the TokenRequest API; the ServiceAccount is
// created if missing.
func saToken(t *testing.T, e *testenv.Env, ns, name string) string {
	t.Helper()
	ctx := context.Background()
	_, err := e.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	tr, err := e.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: testenv.Ptr(int64(3600))}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return tr.Status.Token
}

// statusPortProtected: the shipped install protects the status port (status.auth kubernetes).
// The probes are open; /metrics and /status answer only a token the apiserver authenticates
// and authorizes (the ClusterRole lazyscale-metrics-reader, or the agent's own); anonymous and
// unknown tokens get 401, a token without the role 403. `lazyscale status` in the pod works with
// the pod's own token.
func statusPortProtected(t *testing.T, bin string, e *testenv.Env, addr string) {
	t.Helper()
	ctx := context.Background()
	code := func(path, token string) int {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	_, err := e.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "monitoring"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = e.Kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-reads-lazyscale"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "lazyscale-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: "monitoring"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	reader, nobody, own := saToken(t, e, "monitoring", "prometheus"), saToken(t, e, "monitoring", "nobody"), saToken(t, e, "lazyscale", "lazyscale")
	for _, path := range []string{"/healthz", "/readyz"} {
		assert.Equal(t, http.StatusOK, code(path, ""), "%s is open for the probes", path)
	}
	for _, path := range []string{"/metrics", "/status", "/ui"} {
		assert.Equal(t, http.StatusUnauthorized, code(path, ""), "%s without a token", path)
		assert.Equal(t, http.StatusUnauthorized, code(path, "not-a-token"), "%s with a token the apiserver does not know", path)
		assert.Equal(t, http.StatusForbidden, code(path, nobody), "%s with a token without the role", path)
		// The binding may take a moment to reach the apiserver's authorizer cache.
		require.Eventually(t, func() bool { return code(path, reader) == http.StatusOK }, testenv.WaitFor, 200*time.Millisecond, "%s with the reader's token", path)
		assert.Equal(t, http.StatusOK, code(path, own), "%s with the agent's own token", path)
	}

	// `lazyscale status`, as run in the pod (kubectl exec, without the agent's config): the
	// credentials' token goes with the request once the port asks for one; a token without
	// the role gets a clear refusal.
	out, err := exec.Command(bin, "status", "--kubeconfig", tokenKubeconfig(t, e, own), "--status-addr", addr).CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "open (term")
	status := exec.Command(bin, "status", "--kubeconfig", tokenKubeconfig(t, e, nobody), "--status-addr", addr)
	status.Env = append(os.Environ(), "LAZYSCALE_STATUS_AUTH=kubernetes")
	out, err = status.CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "403 Forbidden")
	assert.Contains(t, string(out), "may not get /status")
}

// tokenKubeconfig writes a kubeconfig for e's cluster that authenticates with token.
func tokenKubeconfig(t *testing.T, e *testenv.Env, token string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(e.CP.Kubeconfig)
	require.NoError(t, err)
	for _, a := range cfg.AuthInfos {
		*a = clientcmdapi.AuthInfo{Token: token}
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}
