package lazyscale

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

// Feature alone builds on what a host provides (here the fake core), with no provider of its
// own for the core types: a host that has them includes it without duplicates.
func TestFeatureOnAHostsCore(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, nil)
	require.NoError(t, fx.ValidateApp(core, Feature()))
}

func TestBundleValidates(t *testing.T) {
	require.NoError(t, fx.ValidateApp(fx.NopLogger, fx.Supply(configdef.Params{}), Bundle()))
}

// goList runs `go list` with a template over pattern.
func goList(t *testing.T, template string, patterns ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-f", template}, patterns...)...).CombinedOutput()
	require.NoError(t, err, string(out))
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// fx stays at the edge: only fx packages (and the bundles, binaries, examples and tests)
// import it, and the binary links neither fx's test support nor package testing.
func TestFxStaysAtTheEdge(t *testing.T) {
	for _, line := range goList(t, `{{.ImportPath}} {{join .Deps " "}}`, "./comp/...", "./lifecycle/...", "./api/...") {
		pkg, deps, _ := strings.Cut(line, " ")
		if strings.HasSuffix(pkg, "/fx") {
			continue
		}
		assert.NotContains(t, strings.Fields(deps), "go.uber.org/fx", "%s depends on fx: only fx packages may", pkg)
	}
	deps := goList(t, `{{join .Deps "\n"}}`, "./cmd/lazyscale")
	assert.NotContains(t, deps, "testing", "the binary links package testing")
	assert.NotContains(t, deps, "go.uber.org/fx/fxtest")
}
