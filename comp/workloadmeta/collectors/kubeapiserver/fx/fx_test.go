package fx

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	gatefx "github.com/lazyscale/lazyscale/comp/autoscalinggate/fx"
	dpacachefx "github.com/lazyscale/lazyscale/comp/dpacache/fx"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	wmfx "github.com/lazyscale/lazyscale/comp/workloadmeta/fx"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Deferred: nothing is listed before the gate opens; then the pods of the namespaces holding
// a DPA are collected, and workloadmeta says synced.
func TestModule(t *testing.T) {
	// The fake clientset cannot stream an initial list (no bookmark): LIST + WATCH.
	core, fakes := fxutiltest.FakeCore(t, map[string]string{"workloadmeta.pods.watch_list": "false"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := fakes.Kube.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", UID: "u1"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = fakes.Kube.CoreV1().Pods("other").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "db-1", UID: "u2"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	type deps struct {
		fx.In
		Collector Collector
		Gate      gatedef.Component
		Store     wmdef.Component
	}
	got := fxutiltest.Component[deps](t, core, dpacachefx.Module(), gatefx.Module(), wmfx.Module(), Module())
	assert.Equal(t, wmdef.StateDormant, got.Store.CollectionState(wmdef.KindPod))
	for _, a := range fakes.Kube.Actions() {
		assert.False(t, a.GetResource().Resource == "pods" && a.GetVerb() != "create", "no pod request while dormant: %s", a.GetVerb())
	}
	// The first DPA opens the gate.
	_, err = fakes.Dynamic.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop").Create(ctx, fxutiltest.DPA("shop", "web", "web"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.True(t, got.Store.WaitForCollectionState(ctx, wmdef.KindPod, wmdef.StateSynced))
	assert.Equal(t, 1, got.Store.Count(wmdef.KindPod), "only the pods of the namespace holding a DPA")
	assert.True(t, got.Store.Synced(wmdef.KindPod, "shop"))
	assert.False(t, got.Store.Synced(wmdef.KindPod, "other"))
}
