package fx

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/goleak"

	gatefx "github.com/lazyscale/lazyscale/comp/autoscalinggate/fx"
	"github.com/lazyscale/lazyscale/comp/core/version"
	dpacachefx "github.com/lazyscale/lazyscale/comp/dpacache/fx"
	"github.com/lazyscale/lazyscale/comp/status/def"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The server renders the sections it is given into the typed document, and /readyz runs
// the checks.
func TestModule(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, nil)
	srv := fxutiltest.Component[def.Component](t, core, dpacachefx.Module(), gatefx.Module(), Module(),
		fx.Provide(fx.Annotate(func() def.Section {
			return def.Section{Name: "autoscalers", Fill: func(d *def.Document) { n := 3; d.Autoscalers = &n }}
		}, fx.ResultTags(`group:"status_sections"`))))
	resp, err := http.Get("http://" + srv.Addr() + "/status")
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc def.Document
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&doc))
	assert.Equal(t, version.Version, doc.Version)
	require.NotNil(t, doc.Gate)
	assert.True(t, doc.Gate.WorkloadAutoscaling)
	require.NotNil(t, doc.Autoscalers)
	assert.Equal(t, 3, *doc.Autoscalers)
	assert.Nil(t, doc.Leader, "a section not included is absent")
	require.Eventually(t, func() bool {
		r, err := http.Get("http://" + srv.Addr() + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	}, fxutiltest.WaitFor, 20*time.Millisecond, "ready once the DPA cache and the trigger watches synced")
}
