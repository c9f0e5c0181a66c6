package fx

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/comp/leaderelection/def"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Enabled, the component takes the Lease (on a fake clientset) once asked to lead.
func TestModule(t *testing.T) {
	core, fakes := fxutiltest.FakeCore(t, map[string]string{"leader_election.enabled": "true", "leader_election.namespace": "lazyscale"})
	le := fxutiltest.Component[def.Component](t, core, Module())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leading, ok := le.WaitForLeadership(ctx)
	require.True(t, ok)
	assert.NoError(t, leading.Err())
	assert.True(t, le.IsLeader())
	lease, err := fakes.Kube.CoordinationV1().Leases("lazyscale").Get(ctx, le.Status().Lease[len("lazyscale/"):], metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, le.Status().Identity, *lease.Spec.HolderIdentity)
}
