package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// monitoringDir holds the shipped alert rules and dashboard.
var monitoringDir = filepath.Join("..", "..", "deploy", "monitoring")

// ruleExprs reads every alert expression of the shipped PrometheusRule, by alert name.
func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(monitoringDir, "prometheusrule.yaml"))
	require.NoError(t, err)
	var rule struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string            `json:"name"`
			Namespace string            `json:"namespace"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Alert       string            `json:"alert"`
					Expr        string            `json:"expr"`
					For         string            `json:"for"`
					Labels      map[string]string `json:"labels"`
					Annotations map[string]string `json:"annotations"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	require.NoError(t, yaml.UnmarshalStrict(raw, &rule))
	require.Equal(t, "monitoring.coreos.com/v1", rule.APIVersion)
	require.Equal(t, "PrometheusRule", rule.Kind)
	out := map[string]string{}
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "group %s: a rule without a name", g.Name)
			require.NotContains(t, out, r.Alert, "two alerts named %s", r.Alert)
			_, err := model.ParseDuration(r.For)
			require.NoError(t, err, "%s: for", r.Alert)
			require.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], "%s: severity", r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], "%s: summary", r.Alert)
			require.NotEmpty(t, r.Annotations["description"], "%s: description", r.Alert)
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// dashboardExprs reads every query of the shipped Grafana dashboard, with Grafana's variables
// replaced by what Grafana would put there.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(monitoringDir, "grafana-dashboard.json"))
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	vars := strings.NewReplacer("$__rate_interval", "5m", "$namespace", ".*", "$name", ".*")
	out := map[string]string{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			out[p.Title+"/"+tg.RefID] = vars.Replace(tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok && strings.HasPrefix(q, "label_values(") {
			// label_values(<selector>, <label>): the selector is PromQL.
			inner := strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
			out["variable "+v.Name] = vars.Replace(inner[:strings.LastIndex(inner, ",")])
		}
	}
	return out
}

// metricNames are the metric names an expression selects.
func metricNames(t *testing.T, what, expr string) []string {
	t.Helper()
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	require.NoError(t, err, "%s does not parse: %s", what, expr)
	var names []string
	parser.Inspect(parsed, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	require.NotEmpty(t, names, "%s selects no metric", what)
	return names
}

// exported reads the metric families of an agent's /metrics.
func (a *agent) exported() map[string]model.MetricType {
	a.t.Helper()
	_, body := a.get("/metrics")
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(a.t, err)
	out := map[string]model.MetricType{}
	for name, f := range families {
		out[name] = model.MetricType(f.GetType())
	}
	return out
}

// exists: a selected name is a family, or a histogram's _bucket, _sum or _count.
func exists(families map[string]model.MetricType, name string) bool {
	if _, ok := families[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if _, ok := families[base]; ok {
				return true
			}
		}
	}
	return false
}

// TestAlertRulesNameExistingMetrics: the shipped alert rules and dashboard parse, and every
// metric they select is exported by a running agent with a DPA that recommends and acts. The
// per-DPA series follow the DPA: they match its status and go with it.
func TestAlertRulesNameExistingMetrics(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("metrics", nil)
	e.runningDeployment(ns, "web", 1)
	e.dpa(ns, "web", "web", map[string]string{
		v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m", "memory": "200Mi"}}]`,
		v1alpha2.ForceReplicasAnnotation:  "2",
	}, nil)
	a := e.startAgent(nil)

	// What a user sees: the Deployment scaled to 2, its pods running with the recommendation.
	e.waitPodsRunWith(ns, "web", 2, func(p corev1.Pod) string {
		if got := p.Spec.Containers[0].Resources.Requests.Cpu().String(); got != "300m" {
			return "cpu request " + got
		}
		return ""
	})
	series := func(name, labels string) string {
		return a.metric(fmt.Sprintf(`%s{%s}`, name, labels))
	}
	nn := fmt.Sprintf(`name="web",namespace=%q`, ns)
	require.Eventually(t, func() bool {
		return series("lazyscale_autoscaling_dpa_desired_replicas", nn) == "2" &&
			series("lazyscale_autoscaling_dpa_current_replicas", nn) == "2" &&
			series("lazyscale_autoscaling_dpa_recommended_requests", `container="app",`+nn+`,resource="cpu"`) == "0.3" &&
			series("lazyscale_autoscaling_dpa_last_action_timestamp_seconds", `direction="horizontal",`+nn) != "" &&
			series("lazyscale_autoscaling_dpa_last_action_timestamp_seconds", `direction="vertical",`+nn) != ""
	}, waitFor, 200*time.Millisecond, "the per-DPA series never matched the DPA")
	mem, err := strconv.ParseFloat(series("lazyscale_autoscaling_dpa_recommended_requests", `container="app",`+nn+`,resource="memory"`), 64)
	require.NoError(t, err)
	assert.Equal(t, float64(200<<20), mem, "bytes")
	assert.Equal(t, "1", series("lazyscale_autoscaling_dpa_condition", `condition="Active",`+nn))
	assert.Equal(t, "0", series("lazyscale_autoscaling_dpa_condition", `condition="Error",`+nn))
	assert.Equal(t, "1", series("lazyscale_autoscaling_dpa_info", `mode="Apply",`+nn+`,target_kind="Deployment",target_name="web"`))
	dpa := e.getDPA(ns, "web")
	require.NotNil(t, dpa.Status.Vertical)
	require.NotNil(t, dpa.Status.Vertical.Target)
	at, err := strconv.ParseFloat(series("lazyscale_autoscaling_dpa_recommendation_timestamp_seconds", `direction="vertical",`+nn), 64)
	require.NoError(t, err)
	assert.Equal(t, float64(dpa.Status.Vertical.Target.GeneratedAt.Unix()), at, "the recommendation's time is the status's")

	// Counters exist at 0 before their first event; results are success and error everywhere.
	assert.Equal(t, "0", a.metric(`lazyscale_autoscaling_horizontal_scalings_total{result="error"}`))
	assert.NotContains(t, []string{"", "0"}, a.metric(`lazyscale_autoscaling_horizontal_scalings_total{result="success"}`))
	assert.Equal(t, "0", a.metric(`lazyscale_autoscaling_generated_autoscalers_total{action="deleted"}`))
	assert.Equal(t, "0", a.metric(`lazyscale_admission_webhook_requests_total{outcome="bad_request",result="error",webhook="autoscaling"}`))
	// client-go's and the workqueue's own metrics reach the registry.
	assert.NotEmpty(t, a.metric(`lazyscale_workqueue_depth{name="datadogpodautoscalers"}`))
	// No profile in use: nothing waits in the profiles' queue (a DPA's target once did, forever).
	assert.Equal(t, "0", a.metric(`lazyscale_workqueue_depth{name="clusterprofiles"}`))
	assert.NotContains(t, []string{"", "0"}, a.metric(`lazyscale_workqueue_adds_total{name="datadogpodautoscalers"}`))
	assert.NotContains(t, []string{"", "0"}, a.metric(`lazyscale_kube_client_requests_total{code="200",method="GET"}`))
	assert.NotEmpty(t, a.metric(`lazyscale_admission_certificate_not_after_timestamp_seconds`))

	families := a.exported()
	require.Contains(t, families, "lazyscale_build_info")
	// The Prometheus client's linter finds nothing in the whole exposition: lazyscale's own
	// metrics, client-go's and the workqueue's, the Go runtime's and the process's.
	_, exposition := a.get("/metrics")
	problems, err := promlint.New(bytes.NewReader(exposition)).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems, "promlint findings in /metrics")
	checked := 0
	for what, expr := range ruleExprs(t) {
		for _, name := range metricNames(t, what, expr) {
			assert.True(t, exists(families, name), "alert %s selects %s, which the agent does not export", what, name)
			checked++
		}
	}
	for what, expr := range dashboardExprs(t) {
		for _, name := range metricNames(t, what, expr) {
			assert.True(t, exists(families, name), "dashboard %s selects %s, which the agent does not export", what, name)
			checked++
		}
	}
	t.Logf("%d metric names checked", checked)

	// The DPA goes: its series go with it.
	require.NoError(t, e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Delete(context.Background(), "web", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		_, body := a.get("/metrics")
		return !slices.ContainsFunc(strings.Split(string(body), "\n"), func(l string) bool {
			return strings.HasPrefix(l, "lazyscale_autoscaling_dpa_") && strings.Contains(l, fmt.Sprintf("namespace=%q", ns))
		})
	}, waitFor, 200*time.Millisecond, "the deleted DPA's series stayed")
}
