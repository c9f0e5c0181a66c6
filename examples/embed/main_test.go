package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	webhookdef "github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/test/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gathered is the value of one sample of the host's registry ("" when absent).
func gathered(t *testing.T, reg *prometheus.Registry, name string, label ...string) string {
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := true
			for i := 0; i+1 < len(label); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == label[i] && lp.GetValue() == label[i+1]
				}
				match = match && found
			}
			if match {
				switch {
				case m.GetGauge() != nil:
					return strconv.FormatFloat(m.GetGauge().GetValue(), 'f', -1, 64)
				case m.GetCounter() != nil:
					return strconv.FormatFloat(m.GetCounter().GetValue(), 'f', -1, 64)
				}
			}
		}
	}
	return ""
}

// The host composes lazyscale's feature onto its own logger, clients and registry, against a
// real apiserver: a DPA opens the gate, the pods are collected, the apiserver calls the
// webhook, which patches a new pod, and lazyscale's metrics are in the host's registry.
func TestHostEmbedsLazyscale(t *testing.T) {
	e := testenv.NewEnv(t, true)
	h, err := newHost(zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), e.CP.Config)
	require.NoError(t, err)
	port := strconv.Itoa(testenv.FreePort(t))
	params := configdef.Params{Environ: []string{}, Overrides: map[string]string{
		"status.addr": "127.0.0.1:0", "admission.bind_address": "127.0.0.1", "admission.port": port,
		"admission.url": "https://127.0.0.1:" + port,
	}}
	var (
		wm      wmdef.Component
		webhook webhookdef.Component
	)
	require.NoError(t, fx.ValidateApp(fx.NopLogger, lazyscaleOptions(h, params)), "the host's graph: no missing or doubled provider")
	app := fxtest.New(t, fx.NopLogger, lazyscaleOptions(h, params), fx.Populate(&wm, &webhook))
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	assert.Equal(t, "0", gathered(t, h.registry, "lazyscale_autoscaling_gate_open"), "lazyscale registered on the host's registry")

	ctx := context.Background()
	e.Namespace("shop", nil)
	_, err = e.Kube.AppsV1().Deployments("shop").Create(ctx, testenv.Deployment("shop", "cart", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	e.CreatePods("shop", "cart", 5)
	dpa := testenv.DPA("shop", "cart", "cart")
	dpa.SetAnnotations(map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name":"app","requests":{"cpu":"300m"}}]`})
	_, err = e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop").Create(ctx, dpa, metav1.CreateOptions{})
	require.NoError(t, err)

	require.Eventually(t, func() bool { return wm.Count(wmdef.KindPod) == 5 }, testenv.WaitFor, 50*time.Millisecond, "pods collected")
	require.Eventually(t, webhook.PatcherInstalled, testenv.WaitFor, 50*time.Millisecond)
	// The apiserver picks up the webhook configuration asynchronously: new pods until one is
	// patched.
	i := 0
	require.Eventually(t, func() bool {
		i++
		p, err := e.CreatePod("shop", fmt.Sprintf("cart-7c9d8f6b5-e%03d", i), map[string]string{"app": "cart", "pod-template-hash": "7c9d8f6b5"},
			metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "cart-7c9d8f6b5", UID: types.UID("rs-cart"), Controller: testenv.Ptr(true)})
		require.NoError(t, err)
		return p.Annotations[v1alpha2.AutoscalerIDAnnotation] == "shop/cart" && p.Spec.Containers[0].Resources.Requests.Cpu().String() == "300m"
	}, testenv.WaitFor, 200*time.Millisecond, "no pod patched")
	assert.Equal(t, "1", gathered(t, h.registry, "lazyscale_autoscaling_gate_open"))
	assert.NotContains(t, []string{"", "0"}, gathered(t, h.registry, "lazyscale_admission_webhook_requests_total", "outcome", "patched"))
}

// The fx options a host writes stay short: the design promises fewer than 20 lines.
func TestHostOptionsAreShort(t *testing.T) {
	src, err := os.ReadFile("main.go")
	require.NoError(t, err)
	s := string(src)
	begin, end := strings.Index(s, "// embed:begin"), strings.Index(s, "// embed:end")
	require.True(t, begin > 0 && end > begin)
	lines := strings.Count(s[begin:end], "\n") - 1 // the marker's own line
	t.Logf("host fx options: %d lines", lines)
	assert.Less(t, lines, 20)
}
