package fx

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"

	"github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	gatefx "github.com/lazyscale/lazyscale/comp/autoscalinggate/fx"
	dpacachefx "github.com/lazyscale/lazyscale/comp/dpacache/fx"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestModule(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, nil)
	type out struct {
		fx.In
		Webhook  def.Component
		Webhooks []admissiondef.Webhook `group:"admission_webhooks"`
		Sections []statusdef.Section    `group:"status_sections"`
	}
	got := fxutiltest.Component[out](t, core, dpacachefx.Module(), gatefx.Module(), Module())
	require.Len(t, got.Webhooks, 1, "served when workload autoscaling is enabled")
	fill := func() bool {
		var doc statusdef.Document
		for _, s := range got.Sections {
			s.Fill(&doc)
		}
		require.NotNil(t, doc.Webhook)
		return doc.Webhook.PatcherInstalled
	}
	assert.False(t, fill())
	got.Webhook.SetPatcher(def.PodPatcherFunc(func(*corev1.Pod) (bool, error) { return false, nil }))
	assert.True(t, fill(), "/status webhook.patcher_installed follows SetPatcher")
}

func TestModuleDisabled(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, map[string]string{"autoscaling.workload.enabled": "false"})
	type out struct {
		fx.In
		Webhooks []admissiondef.Webhook `group:"admission_webhooks"`
	}
	got := fxutiltest.Component[out](t, core, dpacachefx.Module(), gatefx.Module(), Module())
	assert.Empty(t, got.Webhooks, "nothing to serve")
}
