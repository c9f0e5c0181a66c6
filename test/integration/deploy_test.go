package integration

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/test/controlplane"
)

// The manifests an operator applies are accepted by a real apiserver, as written.
func TestDeployManifestsApply(t *testing.T) {
	e := newEnv(t, true)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	e.Namespace("demo", nil) // the example DPA's namespace (make run creates it)
	out, err := exec.Command(controlplane.KubectlPath(), "--kubeconfig", e.CP.Kubeconfig, "apply",
		"-f", filepath.Join(root, "deploy/lazyscale.yaml"), "-f", filepath.Join(root, "deploy/rbac.yaml"),
		"-f", filepath.Join(root, "deploy/examples/dpa.yaml")).CombinedOutput()
	require.NoError(t, err, string(out))
	d, err := e.Kube.AppsV1().Deployments("lazyscale").Get(context.Background(), "lazyscale", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "lazyscale", d.Spec.Template.Spec.ServiceAccountName)
	svc, err := e.Kube.CoreV1().Services("lazyscale").Get(context.Background(), "lazyscale-admission", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(443), svc.Spec.Ports[0].Port)
}
