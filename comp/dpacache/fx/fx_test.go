package fx

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/lazyscale/lazyscale/comp/dpacache/def"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestModule(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, nil)
	c := fxutiltest.Component[def.Component](t, core, Module())
	require.NotNil(t, c.Informer())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	assert.True(t, c.WaitForSync(ctx))
}

func TestModuleDisabled(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, map[string]string{"autoscaling.workload.enabled": "false"})
	c := fxutiltest.Component[def.Component](t, core, Module())
	assert.Nil(t, c.Informer(), "no informer: nothing listed or watched")
	assert.False(t, c.WaitForSync(context.Background()))
}
