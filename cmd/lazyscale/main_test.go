package main

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/core/version"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
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
			"pod_collection":{"state":"synced","mode":"deferred","pods":200,"synced_in":"85ms",
				"scope":{"scoped":true,"cluster_wide":false,"cluster_wide_above":32,"namespaces":2,"watched":["shop","web"],"namespaces_synced":2,"synced":true}},
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
	assert.Contains(t, out.String(), "synced (mode deferred), 200 pods, initial sync took 85ms; 2 namespaces with a DPA watched (2 synced)")
	assert.Contains(t, out.String(), "autoscaling registered (register=lazy), patcher installed, certificate expires in 8759h0m0s")
}

func TestStatusCommandWithoutAgent(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	assert.Equal(t, exitError, run([]string{"status", "--status-addr", addr}))
}

func TestStatusCommandJSON(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"version":"v1","gate":{"open":true,"workload_autoscaling":true},"autoscalers":2}`))
	}))
	defer srv.Close()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"status", "-o", "json", "--status-addr", strings.TrimPrefix(srv.URL, "http://")})
	require.NoError(t, cmd.Execute())
	var doc statusdef.Document
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc), out.String())
	require.NotNil(t, doc.Gate)
	assert.True(t, doc.Gate.Open)
	require.NotNil(t, doc.Autoscalers)
	assert.Equal(t, 2, *doc.Autoscalers)
	assert.Equal(t, exitConfig, run([]string{"status", "-o", "yaml", "--status-addr", strings.TrimPrefix(srv.URL, "http://")}))
}

// `make build` gives a static binary: no ELF interpreter (no libc needed), so it runs on a
// distroless/static or scratch image; and `version` says what it was built from.
func TestMakeBuildIsStatic(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "lazyscale")
	out, err := exec.Command("make", "-s", "-C", "../..", "build", "BIN="+bin, "VERSION=v0.0.0-test").CombinedOutput()
	require.NoError(t, err, string(out))
	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "dynamically linked: the binary needs a libc")
	}
	assert.Nil(t, f.Section(".interp"))
	v, err := exec.Command(bin, "version", "-o", "json").Output()
	require.NoError(t, err)
	var info version.Info
	require.NoError(t, json.Unmarshal(v, &info))
	assert.Equal(t, "v0.0.0-test", info.Version)
	assert.Regexp(t, `^go1\.`, info.Go)
	assert.Regexp(t, `^v0\.`, info.ClientGo)
	assert.NotEmpty(t, info.Commit)
}

func TestUIProxyAddsTheTokenAndPassesOnlyThePage(t *testing.T) {
	var paths []string
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.RequestURI())
		if r.Header.Get("Authorization") != "Bearer t0k" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("<html>page</html>"))
	}))
	defer agent.Close()
	proxy := httptest.NewServer(uiProxy(strings.TrimPrefix(agent.URL, "http://"), "t0k"))
	defer proxy.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, header ...string) *http.Response {
		req, err := http.NewRequest(http.MethodGet, proxy.URL+path, nil)
		require.NoError(t, err)
		if len(header) == 2 {
			req.Header.Set(header[0], header[1])
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	assert.Equal(t, http.StatusOK, get("/ui?namespace=shop").StatusCode)
	assert.Equal(t, http.StatusOK, get("/ui", "Authorization", "Bearer someone-else").StatusCode, "the browser's own header is replaced")
	assert.Equal(t, http.StatusFound, get("/").StatusCode)
	for _, p := range []string{"/metrics", "/status", "/debug/pprof/"} {
		assert.Equal(t, http.StatusNotFound, get(p).StatusCode, p)
	}
	assert.Equal(t, []string{"/ui?namespace=shop", "/ui"}, paths, "only the page reached the agent")

	agent.Close()
	assert.Equal(t, http.StatusBadGateway, get("/ui").StatusCode)
}
