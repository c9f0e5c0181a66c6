package fx

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	dpacachefx "github.com/lazyscale/lazyscale/comp/dpacache/fx"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The gate, built alone on the shared DPA cache, opens on the first DPA.
func TestModule(t *testing.T) {
	core, fakes := fxutiltest.FakeCore(t, nil)
	gate := fxutiltest.Component[def.Component](t, core, dpacachefx.Module(), Module())
	assert.False(t, gate.IsOpen())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := fakes.Dynamic.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop").Create(ctx, fxutiltest.DPA("shop", "web", "web"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.True(t, gate.Wait(ctx), "the gate opens on a DPA")
	st := gate.Status()
	require.NotNil(t, st.Trigger)
	assert.Equal(t, def.Trigger{Kind: "DatadogPodAutoscaler", Namespace: "shop", Name: "web"}, *st.Trigger)
}
