package fx

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/fx"
	"go.uber.org/goleak"

	"github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestModule(t *testing.T) {
	params := def.Params{Overrides: map[string]string{"status.addr": "127.0.0.1:7777"}, Environ: []string{"LAZYSCALE_LOG_LEVEL=debug"}}
	cfg := fxutiltest.Component[def.Component](t, fx.NopLogger, fx.Supply(params), Module())
	assert.Equal(t, "127.0.0.1:7777", cfg.Get().Status.Addr, "an override")
	assert.Equal(t, "debug", cfg.Get().Log.Level, "the environment")
}

func TestModuleRejectsABadKey(t *testing.T) {
	params := def.Params{Overrides: map[string]string{"kubernetes.qps": "fast"}, Environ: []string{}}
	app := fx.New(fx.NopLogger, fx.Supply(params), Module(), fx.Invoke(func(def.Component) {}))
	assert.ErrorContains(t, app.Err(), "kubernetes.qps")
}
