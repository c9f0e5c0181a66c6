package fxutiltest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/metadata"
	metadatafake "k8s.io/client-go/metadata/fake"
	"k8s.io/client-go/rest"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	configimpl "github.com/lazyscale/lazyscale/comp/core/config/impl"
)

// Fakes are the in-memory stand-ins FakeCore supplies, for a test to seed or inspect.
type Fakes struct {
	Kube     *kubefake.Clientset
	Dynamic  *dynamicfake.FakeDynamicClient
	Metadata *metadatafake.FakeMetadataClient
	Registry *prometheus.Registry
}

// FakeCore supplies what lazyscale's Core bundle provides, built for a unit test: the config
// component from overrides (nothing read from the environment, no listening port), a zaptest
// logger, a fresh registry, and fake Kubernetes clients that serve the datadoghq.com
// resources. The rest.Config points at a closed port: nothing may contact it.
func FakeCore(t testing.TB, overrides map[string]string) (fx.Option, Fakes) {
	t.Helper()
	o := map[string]string{"status.addr": "127.0.0.1:0", "admission.enabled": "false", "leader_election.enabled": "false"}
	for k, v := range overrides {
		o[k] = v
	}
	cfg, err := configimpl.NewComponent(configimpl.Requires{Params: configdef.Params{Overrides: o, Environ: []string{}}})
	require.NoError(t, err)
	// No typed DPA in the scheme: the fake then stores DPAs as unstructured, as the
	// apiserver serves them to a dynamic client.
	scheme := runtime.NewScheme()
	f := Fakes{
		Kube: kubefake.NewClientset(),
		Dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{
			v1alpha2.DatadogPodAutoscalersResource:               "DatadogPodAutoscalerList",
			v1alpha2.DatadogPodAutoscalerClusterProfilesResource: "DatadogPodAutoscalerClusterProfileList",
		}),
		Metadata: metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme()),
		Registry: prometheus.NewRegistry(),
	}
	return fx.Options(
		fx.NopLogger,
		fx.Supply(
			fx.Annotate(cfg.Comp, fx.As(new(configdef.Component))),
			zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
			&rest.Config{Host: "http://127.0.0.1:1"},
			fx.Annotate(f.Kube, fx.As(new(kubernetes.Interface))),
			fx.Annotate(f.Dynamic, fx.As(new(dynamic.Interface))),
			fx.Annotate(f.Metadata, fx.As(new(metadata.Interface))),
			fx.Annotate(f.Registry, fx.As(new(prometheus.Registerer)), fx.As(new(prometheus.Gatherer))),
		),
	), f
}
