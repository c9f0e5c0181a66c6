package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/kubeletenv"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// podEnv is the environment the kubelet gives the shipped container: the pod spec's env with
// the downward API resolved, and the service links of the Services of its namespace and of
// the kubernetes Service (all injected when a pod leaves enableServiceLinks at its default).
func podEnv(t *testing.T, e *testenv.Env, ns string, c corev1.Container, podName string) []string {
	ctx := context.Background()
	var env []string
	svcs, err := e.Kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, svcs.Items, "the install creates its Services")
	master, err := e.Kube.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	require.NoError(t, err)
	for _, svc := range append(svcs.Items, *master) {
		env = append(env, kubeletenv.ServiceLinks(&svc)...)
	}
	for _, v := range c.Env {
		value := v.Value
		if v.ValueFrom != nil {
			require.NotNil(t, v.ValueFrom.FieldRef, "only downward API fields are resolved here: %s", v.Name)
			require.Equal(t, "metadata.name", v.ValueFrom.FieldRef.FieldPath)
			value = podName
		}
		env = append(env, v.Name+"="+value)
	}
	return env
}

// saKubeconfig is a kubeconfig that authenticates as the shipped ServiceAccount with a token
// from the TokenRequest API, as the kubelet projects one into the pod.
func saKubeconfig(t *testing.T, e *testenv.Env, ns, sa string) string {
	tr, err := e.Kube.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: testenv.Ptr(int64(3600))}}, metav1.CreateOptions{})
	require.NoError(t, err)
	admin, err := clientcmd.LoadFromFile(e.CP.Kubeconfig)
	require.NoError(t, err)
	cluster := admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster]
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = cluster
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "sa"}
	cfg.CurrentContext = "sa"
	path := filepath.Join(t.TempDir(), "sa.kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

// runAsPod runs the binary as the kubelet would run the first container of Deployment
// ns/name, applied in e: its args and env, the service links of ns's Services, and its
// ServiceAccount's token. The config file the pod mounts from a ConfigMap is read from the
// apiserver and written locally (the path in the args replaced), with extra merged over it:
// what only a test needs, such as loopback addresses. It returns the status address.
func runAsPod(t *testing.T, bin string, e *testenv.Env, ns, name string, extra map[string]any) (string, *syncBuffer) {
	ctx := context.Background()
	d, err := e.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	args := append([]string{}, c.Args...)
	for _, m := range c.VolumeMounts {
		var cmName string
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cmName = v.ConfigMap.Name
			}
		}
		if cmName == "" || m.SubPath == "" {
			continue
		}
		cm, err := e.Kube.CoreV1().ConfigMaps(ns).Get(ctx, cmName, metav1.GetOptions{})
		require.NoError(t, err)
		cfg := map[string]any{}
		require.NoError(t, yaml.Unmarshal([]byte(cm.Data[m.SubPath]), &cfg))
		merge(cfg, extra)
		b, err := yaml.Marshal(cfg)
		require.NoError(t, err)
		local := filepath.Join(t.TempDir(), m.SubPath)
		require.NoError(t, os.WriteFile(local, b, 0o600))
		for i := range args {
			if args[i] == m.MountPath {
				args[i] = local
			}
		}
	}
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	args = append(args, "--kubeconfig", saKubeconfig(t, e, ns, spec.ServiceAccountName), "--status-addr", addr)
	logs := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(podEnv(t, e, ns, c, name+"-6d4f9c7b8-x2k4q"), "PATH="+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	require.Eventually(t, func() bool {
		select {
		case err := <-exited:
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
	return addr, logs
}

// merge sets src's leaves into dst.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sub, ok := v.(map[string]any); ok {
			d, _ := dst[k].(map[string]any)
			if d == nil {
				d = map[string]any{}
			}
			merge(d, sub)
			dst[k] = d
			continue
		}
		dst[k] = v
	}
}

// loopbackAdmission is what only a test needs: the webhook on loopback, called by URL.
func loopbackAdmission(t *testing.T) map[string]any {
	port := testenv.FreePort(t)
	return map[string]any{"admission": map[string]any{"bind_address": "127.0.0.1", "port": port,
		"url": "https://127.0.0.1:" + strconv.Itoa(port)}}
}

// dpaActs creates a Deployment, its pods and a DPA in shop, and waits for the agent at addr to
// open the gate, collect the pods and write the DPA's status; then no request of the agent
// was refused by the apiserver.
func dpaActs(t *testing.T, e *testenv.Env, addr string, logs *syncBuffer) {
	ctx := context.Background()
	e.Namespace("shop", nil)
	_, err := e.Kube.AppsV1().Deployments("shop").Create(ctx, testenv.Deployment("shop", "cart", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	e.CreatePods("shop", "cart", 5)
	e.CreateDPA("shop", "cart", "cart")
	require.Eventually(t, func() bool {
		d, err := getStatus(addr)
		return err == nil && d.Gate.Open && d.PodCollection.Pods == 5 && d.Autoscaling.State == "running"
	}, testenv.WaitFor, 100*time.Millisecond, "logs:\n%s", logs)
	require.Eventually(t, func() bool {
		dpa, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop").Get(ctx, "cart", metav1.GetOptions{})
		return err == nil && dpa.Object["status"] != nil
	}, testenv.WaitFor, 100*time.Millisecond, "the leader acted: the DPA has a status")
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
	require.Contains(t, podEnv(t, e, "lazyscale", d.Spec.Template.Spec.Containers[0], "x"),
		"LAZYSCALE_ADMISSION_PORT=tcp://"+mustServiceIP(t, e, "lazyscale-admission")+":443", "the variable that collides with admission.port")

	addr, logs := runAsPod(t, bin, e, "lazyscale", "lazyscale", loopbackAdmission(t))
	dpaActs(t, e, addr, logs)

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
