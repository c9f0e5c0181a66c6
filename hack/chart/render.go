// Package chart renders lazyscale's Helm chart with the Helm Go SDK, as `helm template` would:
// the tests apply what it renders to a real apiserver, and `make generate` writes the chart's
// defaults to deploy/lazyscale.yaml.
package chart

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/releaseutil"
)

// Dir is the chart's directory.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "charts", "lazyscale")
}

// Rendered is a rendered release.
type Rendered struct {
	// Manifests are the rendered objects, one YAML document each, in Helm's install order.
	Manifests []releaseutil.Manifest
	// CRDs are the chart's crds/ files.
	CRDs []*chart.File
}

// YAML is the manifests as one multi-document stream.
func (r Rendered) YAML() string {
	var b strings.Builder
	for _, m := range r.Manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, strings.TrimSpace(m.Content))
	}
	return b.String()
}

// Render renders the chart as release name in namespace with values over the defaults.
func Render(name, namespace string, values map[string]any) (Rendered, error) {
	c, err := loader.Load(Dir())
	if err != nil {
		return Rendered{}, fmt.Errorf("load chart: %w", err)
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = chartutil.KubeVersion{Version: "v1.37.2", Major: "1", Minor: "37"}
	vals, err := chartutil.ToRenderValues(c, values, chartutil.ReleaseOptions{Name: name, Namespace: namespace, IsInstall: true, Revision: 1}, caps)
	if err != nil {
		return Rendered{}, fmt.Errorf("values: %w", err)
	}
	files, err := engine.Render(c, vals)
	if err != nil {
		return Rendered{}, fmt.Errorf("render: %w", err)
	}
	for name := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			delete(files, name)
		}
	}
	_, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return Rendered{}, fmt.Errorf("sort: %w", err)
	}
	var out []releaseutil.Manifest
	for _, m := range manifests {
		if strings.TrimSpace(m.Content) != "" {
			out = append(out, m)
		}
	}
	return Rendered{Manifests: out, CRDs: c.CRDs()}, nil
}

const deployHeader = `# lazyscale in a cluster, rendered from charts/lazyscale with its default values by
# 'make generate' (do not edit: change the chart). The namespace (Pod Security "restricted"),
# the ServiceAccount and its RBAC, the config, two replicas (one leads and writes; both serve
# the webhook), the Services and a disruption budget:
#
#   kubectl apply -f deploy/crds/ -f deploy/lazyscale.yaml
#
# The image: 'make image' (bin/image/lazyscale.tar). The webhook configuration is created by
# the leader when the first DPA appears, owned by the ClusterRole lazyscale: deleting this
# file's objects deletes it too (garbage collection), so no webhook is left behind.
`

// DeployValues are the values deploy/lazyscale.yaml is rendered with: the defaults, and the
// namespace created with its Pod Security labels.
var DeployValues = map[string]any{"namespace": map[string]any{"create": true}}

// DeployManifest is deploy/lazyscale.yaml: the chart's defaults for the release lazyscale in
// the namespace lazyscale.
func DeployManifest() (string, error) {
	r, err := Render("lazyscale", "lazyscale", DeployValues)
	if err != nil {
		return "", err
	}
	return deployHeader + r.YAML(), nil
}

const ruleHeader = `# lazyscale's alerts as a PrometheusRule for the Prometheus Operator, rendered from
# charts/lazyscale (prometheusRule.enabled) by 'make generate' (do not edit: change the chart's
# files/alerts.yaml, which is also a rule file for a plain Prometheus as it is):
#
#   kubectl apply -f deploy/monitoring/prometheusrule.yaml
`

// RuleManifest is deploy/monitoring/prometheusrule.yaml: the chart's PrometheusRule for the
// release lazyscale in the namespace lazyscale.
func RuleManifest() (string, error) {
	r, err := Render("lazyscale", "lazyscale", map[string]any{"prometheusRule": map[string]any{"enabled": true}})
	if err != nil {
		return "", err
	}
	for _, m := range r.Manifests {
		if m.Head != nil && m.Head.Kind == "PrometheusRule" {
			return ruleHeader + strings.TrimSpace(m.Content) + "\n", nil
		}
	}
	return "", fmt.Errorf("the chart rendered no PrometheusRule with prometheusRule.enabled")
}
