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

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/kubeletenv"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// podEnv is the environment the kubelet gives the shipped container: the pod spec's env with
// the downward API resolved, and the service links of the Services of its namespace and of
// the kubernetes Service (all injected when a pod leaves enableServiceLinks at its default).
func podEnv(t *testing.T, e *testenv.Env, c corev1.Container, podName string) []string {
	ctx := context.Background()
	var env []string
	svcs, err := e.Kube.CoreV1().Services("lazyscale").List(ctx, metav1.ListOptions{})
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
func saKubeconfig(t *testing.T, e *testenv.Env) string {
	tr, err := e.Kube.CoreV1().ServiceAccounts("lazyscale").CreateToken(context.Background(), "lazyscale",
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

// The binary runs as the shipped Deployment's container would: its args and env, the
// service-link variables a kubelet injects for the install's Services (among them
// LAZYSCALE_ADMISSION_PORT=tcp://<ip>:443, which once made it exit with code 2), and the
// shipped ServiceAccount's token. It becomes ready, opens the gate on a DPA, collects the pods,
// and the apiserver refuses none of its requests.
func TestBinaryAsItsPodRunsIt(t *testing.T) {
	bin := buildBinary(t)
	e := testenv.NewEnv(t, true)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	out, err := exec.Command(controlplane.KubectlPath(), "--kubeconfig", e.CP.Kubeconfig, "apply",
		"-f", filepath.Join(root, "deploy/lazyscale.yaml"), "-f", filepath.Join(root, "deploy/rbac.yaml")).CombinedOutput()
	require.NoError(t, err, string(out))
	ctx := context.Background()
	d, err := e.Kube.AppsV1().Deployments("lazyscale").Get(ctx, "lazyscale", metav1.GetOptions{})
	require.NoError(t, err)
	assert.False(t, *d.Spec.Template.Spec.EnableServiceLinks, "the shipped pod asks for no service links")
	c := d.Spec.Template.Spec.Containers[0]
	env := podEnv(t, e, c, "lazyscale-6d4f9c7b8-x2k4q")
	require.Contains(t, env, "LAZYSCALE_ADMISSION_PORT=tcp://"+mustServiceIP(t, e, "lazyscale-admission")+":443")

	// What only a test needs (loopback addresses instead of the pod's), through the config
	// file: it ranks below the environment, so a service link read as config would still win.
	port := strconv.Itoa(testenv.FreePort(t))
	cfgFile := filepath.Join(t.TempDir(), "lazyscale.yaml")
	require.NoError(t, os.WriteFile(cfgFile, []byte("admission:\n  bind_address: 127.0.0.1\n  port: "+port+
		"\n  url: https://127.0.0.1:"+port+"\n"), 0o600))
	addr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	args := append(append([]string{}, c.Args...), "--config", cfgFile, "--kubeconfig", saKubeconfig(t, e), "--status-addr", addr)
	var logs syncBuffer
	cmd := exec.Command(bin, args...)
	cmd.Env = append(env, "PATH="+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = &logs, &logs
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
			t.Fatalf("the agent exited: %v\n%s", err, &logs)
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, testenv.WaitFor, 100*time.Millisecond, "never ready; logs:\n%s", &logs)

	e.Namespace("shop", nil)
	_, err = e.Kube.AppsV1().Deployments("shop").Create(ctx, testenv.Deployment("shop", "cart", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	e.CreatePods("shop", "cart", 5)
	e.CreateDPA("shop", "cart", "cart")
	require.Eventually(t, func() bool {
		d, err := getStatus(addr)
		return err == nil && d.Gate.Open && d.PodCollection.Pods == 5 && d.Autoscaling.State == "running"
	}, testenv.WaitFor, 100*time.Millisecond, "logs:\n%s", &logs)
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

func mustServiceIP(t *testing.T, e *testenv.Env, name string) string {
	svc, err := e.Kube.CoreV1().Services("lazyscale").Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return svc.Spec.ClusterIP
}
