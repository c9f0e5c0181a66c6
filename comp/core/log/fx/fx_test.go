package fx

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/fx"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	configfx "github.com/lazyscale/lazyscale/comp/core/config/fx"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestModule(t *testing.T) {
	params := configdef.Params{Overrides: map[string]string{"log.level": "warn"}, Environ: []string{}}
	log := fxutiltest.Component[*zap.Logger](t, fx.NopLogger, fx.Supply(params), configfx.Module(), Module(), FxEvents())
	assert.False(t, log.Core().Enabled(zapcore.InfoLevel))
	assert.True(t, log.Core().Enabled(zapcore.WarnLevel))
}
