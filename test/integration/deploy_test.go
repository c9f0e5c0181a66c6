package integration

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// The manifests an operator applies are accepted by a real apiserver, as written.
func TestDeployManifestsApply(t *testing.T) {
	e := newEnv(t, true)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	e.Namespace("demo", nil) // the example DPA's namespace (make run creates it)
	out, err := exec.Command(controlplane.KubectlPath(), "--kubeconfig", e.CP.Kubeconfig, "apply",
		"-f", filepath.Join(root, "deploy/lazyscale.yaml"),
		"-f", filepath.Join(root, "deploy/examples/dpa-preview.yaml"), "-f", filepath.Join(root, "deploy/examples/dpa.yaml"),
		"-f", filepath.Join(root, "deploy/examples/profile.yaml")).CombinedOutput()
	require.NoError(t, err, string(out))
	d, err := e.Kube.AppsV1().Deployments("lazyscale").Get(context.Background(), "lazyscale", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "lazyscale", d.Spec.Template.Spec.ServiceAccountName)
	svc, err := e.Kube.CoreV1().Services("lazyscale").Get(context.Background(), "lazyscale-admission", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(443), svc.Spec.Ports[0].Port)
}

// lazyscale works with exactly the permissions deploy/lazyscale.yaml (rendered from the chart) grants: an agent whose every
// request impersonates the lazyscale ServiceAccount opens the gate on a profile label,
// generates the DPA, reads PodMetrics, scales through /scale, rolls out, writes statuses and
// events, and the apiserver refuses none of its requests.
func TestRunsWithItsRBAC(t *testing.T) {
	e := newClusterEnv(t)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	out, err := exec.Command(controlplane.KubectlPath(), "--kubeconfig", e.CP.Kubeconfig, "apply",
		"-f", filepath.Join(root, "deploy/lazyscale.yaml")).CombinedOutput()
	require.NoError(t, err, string(out))
	kc, err := clientcmd.LoadFromFile(e.CP.Kubeconfig)
	require.NoError(t, err)
	for _, u := range kc.AuthInfos {
		u.Impersonate = "system:serviceaccount:lazyscale:lazyscale"
	}
	asSA := filepath.Join(t.TempDir(), "lazyscale.kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, asSA))

	ns := e.Namespace("shop", nil)
	e.runningDeployment(ns, "web", 2)
	e.SetUsage(ns, "web", "130m", "200Mi")
	e.CreateProfile("standard")
	_, err = e.Kube.AppsV1().Deployments(ns).Create(context.Background(),
		testenv.Deployment(ns, "api", map[string]string{v1alpha2.ProfileLabel: "standard"}), metav1.CreateOptions{})
	require.NoError(t, err)
	e.startAgent(map[string]string{"kubernetes.kubeconfig": asSA, "autoscaling.workload.resync_period": "2s"})

	e.waitDPA(ns, generatedName("Deployment", ns, "api"), nil)
	e.waitProfile("standard", func(p *v1alpha2.DatadogPodAutoscalerClusterProfile) bool { return p.Status.ControlledAutoscalers == 1 })
	// The memory changes (resized in place), the CPU does not: the utilization stays 140 %.
	e.dpa(ns, "web", "web", map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name":"app","requests":{"cpu":"100m","memory":"200Mi"}}]`}, nil)
	// Scaled out from the local recommendation, and the running pods resized in place.
	require.Eventually(t, func() bool { return len(e.events(ns, "web", "SuccessfulScale")) > 0 }, waitFor, 100*time.Millisecond, "never scaled")
	require.Eventually(t, func() bool { return len(e.events(ns, "web", "ResizeTriggered")) > 0 }, waitFor, 100*time.Millisecond, "never resized")

	var refused []string
	for _, ev := range e.LazyscaleRequests("") {
		if ev.ResponseStatus != nil && ev.ResponseStatus.Code == http.StatusForbidden {
			refused = append(refused, ev.Verb+" "+ev.RequestURI)
		}
	}
	assert.Empty(t, refused, "requests the chart's RBAC does not allow")
}
