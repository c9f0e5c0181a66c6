package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// kinds renders the chart with values and returns its objects by kind.
func kinds(t *testing.T, values map[string]any) map[string][]map[string]any {
	t.Helper()
	r, err := Render("lazyscale", "lazyscale", values)
	require.NoError(t, err)
	out := map[string][]map[string]any{}
	for _, m := range r.Manifests {
		var obj map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(m.Content), &obj), m.Name)
		kind, _ := obj["kind"].(string)
		out[kind] = append(out[kind], obj)
	}
	return out
}

// The alerts and the dashboard ship in the chart, off by default; on, the PrometheusRule's
// spec is files/alerts.yaml and the dashboard's ConfigMap carries files/grafana-dashboard.json
// and Grafana's sidecar label, both with the labels asked for.
func TestChartMonitoring(t *testing.T) {
	off := kinds(t, nil)
	assert.Empty(t, off["PrometheusRule"], "off by default")
	for _, cm := range off["ConfigMap"] {
		assert.NotEqual(t, "lazyscale-dashboard", cm["metadata"].(map[string]any)["name"], "off by default")
	}

	on := kinds(t, map[string]any{
		"prometheusRule":   map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus"}},
		"grafanaDashboard": map[string]any{"enabled": true, "namespace": "grafana"},
	})
	require.Len(t, on["PrometheusRule"], 1)
	rule := on["PrometheusRule"][0]
	raw, err := os.ReadFile(filepath.Join(Dir(), "files", "alerts.yaml"))
	require.NoError(t, err)
	var alerts map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &alerts))
	assert.Equal(t, alerts, rule["spec"], "the rule's spec is files/alerts.yaml, untemplated ({{ $labels }} kept)")
	meta := rule["metadata"].(map[string]any)
	assert.Equal(t, "lazyscale", meta["namespace"])
	assert.Equal(t, "kube-prometheus", meta["labels"].(map[string]any)["release"])

	var dashboard map[string]any
	for _, cm := range on["ConfigMap"] {
		if m := cm["metadata"].(map[string]any); m["name"] == "lazyscale-dashboard" {
			dashboard = cm
			assert.Equal(t, "grafana", m["namespace"])
			assert.Equal(t, "1", m["labels"].(map[string]any)["grafana_dashboard"])
		}
	}
	require.NotNil(t, dashboard, "no dashboard ConfigMap")
	want, err := os.ReadFile(filepath.Join(Dir(), "files", "grafana-dashboard.json"))
	require.NoError(t, err)
	got := dashboard["data"].(map[string]any)["lazyscale.json"].(string)
	assert.JSONEq(t, string(want), got)
	assert.True(t, json.Valid([]byte(got)))
}
