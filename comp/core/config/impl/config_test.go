package impl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lazyscale/lazyscale/comp/core/config/def"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lazyscale.yaml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

func TestDefaults(t *testing.T) {
	cfg, err := Load("", nil, nil)
	require.NoError(t, err)
	assert.True(t, cfg.Autoscaling.Workload.Enabled, "autoscaling is on by default: it is free until used")
	assert.Equal(t, def.CollectionAuto, cfg.Workloadmeta.Pods.Collection)
	assert.Equal(t, "127.0.0.1:5080", cfg.Status.Addr)

	inCluster, err := Load("", []string{"KUBERNETES_SERVICE_HOST=10.0.0.1"}, nil)
	require.NoError(t, err)
	assert.Equal(t, ":5080", inCluster.Status.Addr, "in a cluster the probes must reach the status server")
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
log:
  level: warn
  format: json
workloadmeta:
  pods:
    collection: eager
    page_size: 100
kubernetes:
  qps: 7.5
`)
	env := []string{"LAZYSCALE_LOG_LEVEL=error", "LAZYSCALE_WORKLOADMETA_PODS_PAGE_SIZE=200", "PATH=/bin"}
	cfg, err := Load(file, env, map[string]string{"log.level": "debug"})
	require.NoError(t, err)
	assert.Equal(t, "debug", cfg.Log.Level, "flags win over env and file")
	assert.Equal(t, "json", cfg.Log.Format, "file wins over defaults")
	assert.Equal(t, int64(200), cfg.Workloadmeta.Pods.PageSize, "env wins over file")
	assert.Equal(t, def.CollectionEager, cfg.Workloadmeta.Pods.Collection)
	assert.Equal(t, 7.5, cfg.Kubernetes.QPS)
}

func TestInvalidConfigNamesTheKey(t *testing.T) {
	tests := []struct {
		name      string
		file      string
		env       []string
		overrides map[string]string
		key       string
	}{
		{name: "bad enum in file", file: "workloadmeta:\n  pods:\n    collection: lazy\n", key: "workloadmeta.pods.collection"},
		{name: "unknown key in file", file: "autoscaling:\n  workload:\n    enbled: true\n", key: "autoscaling.workload.enbled"},
		{name: "bad bool in env", env: []string{"LAZYSCALE_AUTOSCALING_WORKLOAD_ENABLED=maybe"}, key: "LAZYSCALE_AUTOSCALING_WORKLOAD_ENABLED"},
		{name: "unknown env", env: []string{"LAZYSCALE_AUTOSCALING_ENABLED=true"}, key: "LAZYSCALE_AUTOSCALING_ENABLED"},
		{name: "bad level flag", overrides: map[string]string{"log.level": "loud"}, key: "log.level"},
		{name: "range", overrides: map[string]string{"workloadmeta.pods.page_size": "0"}, key: "workloadmeta.pods.page_size"},
		{name: "qps", overrides: map[string]string{"kubernetes.qps": "-1"}, key: "kubernetes.qps"},
		{name: "calls bound", overrides: map[string]string{"autoscaling.workload.external_recommender.max_in_flight_per_endpoint": "0"}, key: "autoscaling.workload.external_recommender.max_in_flight_per_endpoint"},
		{name: "answer wait over the timeout", overrides: map[string]string{"autoscaling.workload.external_recommender.answer_wait": "1m"}, key: "autoscaling.workload.external_recommender.answer_wait"},
		{name: "status addr", overrides: map[string]string{"status.addr": "localhost"}, key: "status.addr"},
		{name: "list value", file: "log:\n  level: [a]\n", key: "log.level"},
		{name: "not a mapping", file: "- a\n", key: "config"},
		{name: "bad yaml", file: "log: [\n", key: "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := ""
			if tt.file != "" {
				file = writeFile(t, tt.file)
			}
			_, err := Load(file, tt.env, tt.overrides)
			require.Error(t, err)
			var cfgErr *def.Error
			require.True(t, errors.As(err, &cfgErr), "error %v is a *def.Error", err)
			assert.Equal(t, tt.key, cfgErr.Key)
			assert.Contains(t, err.Error(), tt.key)
		})
	}
}

func TestMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"), nil, nil)
	var cfgErr *def.Error
	require.ErrorAs(t, err, &cfgErr)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestKeysAndEnvNames(t *testing.T) {
	keys := Keys()
	assert.Contains(t, keys, "autoscaling.workload.enabled")
	assert.Contains(t, keys, "workloadmeta.pods.collection")
	assert.Equal(t, "LAZYSCALE_AUTOSCALING_WORKLOAD_ENABLED", EnvName("autoscaling.workload.enabled"))
}

// A list key takes a YAML list or, from the environment and flags, a comma-separated string;
// an empty string is an empty list, not the default.
func TestListKeys(t *testing.T) {
	const key = "autoscaling.workload.external_recommender.allowed_endpoints"
	cfg, err := Load("", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"*.svc", "*.svc.cluster.local"}, cfg.Autoscaling.Workload.ExternalRecommender.AllowedEndpoints)

	file := writeFile(t, "autoscaling:\n  workload:\n    external_recommender:\n      allowed_endpoints:\n        - \"*.svc\"\n        - 10.0.0.0/8\n")
	cfg, err = Load(file, nil, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"*.svc", "10.0.0.0/8"}, cfg.Autoscaling.Workload.ExternalRecommender.AllowedEndpoints)

	cfg, err = Load(file, []string{EnvName(key) + "=reco.example.com, 192.0.2.0/24"}, nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"reco.example.com", "192.0.2.0/24"}, cfg.Autoscaling.Workload.ExternalRecommender.AllowedEndpoints)

	cfg, err = Load("", nil, map[string]string{key: ""})
	require.NoError(t, err)
	assert.Empty(t, cfg.Autoscaling.Workload.ExternalRecommender.AllowedEndpoints)

	_, err = Load(writeFile(t, "autoscaling:\n  workload:\n    external_recommender:\n      allowed_endpoints: [\"a,b\"]\n"), nil, nil)
	var cfgErr *def.Error
	require.ErrorAs(t, err, &cfgErr)
	assert.Equal(t, key, cfgErr.Key)
}
