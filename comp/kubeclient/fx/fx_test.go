package fx

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/goleak"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	configfx "github.com/lazyscale/lazyscale/comp/core/config/fx"
	"github.com/lazyscale/lazyscale/comp/core/version"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`

// The clients are built from the kubeconfig without contacting the server.
func TestModule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(path, []byte(kubeconfig), 0o600))
	params := configdef.Params{Overrides: map[string]string{"kubernetes.kubeconfig": path, "kubernetes.qps": "7"}, Environ: []string{}}
	type clients struct {
		fx.In
		Config   *rest.Config
		Kube     kubernetes.Interface
		Dynamic  dynamic.Interface
		Metadata metadata.Interface
	}
	got := fxutiltest.Component[clients](t, fx.NopLogger, fx.Supply(params), configfx.Module(), Module())
	assert.Equal(t, "https://127.0.0.1:1", got.Config.Host)
	assert.Equal(t, version.UserAgent(), got.Config.UserAgent)
	assert.InDelta(t, 7, got.Config.QPS, 0.001)
	assert.NotNil(t, got.Kube)
	assert.NotNil(t, got.Dynamic)
	assert.NotNil(t, got.Metadata)
}
