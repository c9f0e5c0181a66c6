package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

func TestAgentOptionsValidate(t *testing.T) {
	require.NoError(t, fx.ValidateApp(AgentOptions(configdef.Params{})))
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{"invalid flag value", []string{"--log-level", "loud"}, nil, exitConfig},
		{"invalid env value", nil, map[string]string{"LAZYSCALE_WORKLOADMETA_PODS_COLLECTION": "lazy"}, exitConfig},
		{"unknown flag", []string{"--no-such-flag"}, nil, exitConfig},
		{"version", []string{"version"}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			assert.Equal(t, tt.want, run(tt.args))
		})
	}
}

func TestStatusCommandPrintsForAPerson(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.Equal(t, "/status", r.URL.Path)
		_, _ = w.Write([]byte(`{"version":"v1","gate":{"open":true,"opened_at":"2026-01-02T03:04:05Z","workload_autoscaling":true,
			"trigger":{"kind":"DatadogPodAutoscaler","namespace":"shop","name":"cart"}},
			"pod_collection":{"state":"synced","mode":"deferred","pods":200,"synced_in":"85ms"},
			"webhook":{"enabled":true,"register":"lazy","registered":{"autoscaling":true},"patcher_installed":true,
			"certificate":{"not_after":"2027-01-01T00:00:00Z","expires_in":"8759h0m0s"}}}`))
	}))
	defer srv.Close()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"status", "--status-addr", strings.TrimPrefix(srv.URL, "http://")})
	require.NoError(t, cmd.Execute())
	assert.Contains(t, out.String(), "opened by DatadogPodAutoscaler shop/cart")
	assert.Contains(t, out.String(), "synced (mode deferred), 200 pods, initial sync took 85ms")
	assert.Contains(t, out.String(), "autoscaling registered (register=lazy), patcher installed, certificate expires in 8759h0m0s")
}

func TestStatusCommandWithoutAgent(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	assert.Equal(t, exitError, run([]string{"status", "--status-addr", addr}))
}
