// Package integration runs the lazyscale agent in-process against a real etcd and
// kube-apiserver (test/controlplane) and checks what it did from the apiserver's audit log.
package integration

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/lazyscale/lazyscale"
	autoscalingwebhookdef "github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	leaderdef "github.com/lazyscale/lazyscale/comp/leaderelection/def"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/test/testenv"
)

const waitFor = testenv.WaitFor

type env struct{ *testenv.Env }

func newEnv(t *testing.T, withCRDs bool) *env { return &env{testenv.NewEnv(t, withCRDs)} }

// agent is an in-process lazyscale built from the same bundle as the binary.
type agent struct {
	t         *testing.T
	app       *fxtest.App
	gate      gatedef.Component
	wm        wmdef.Component
	status    statusdef.Component
	admission admissiondef.Component
	webhook   autoscalingwebhookdef.Component
	leader    leaderdef.Component
	// port is the admission server's.
	port     int
	stopOnce sync.Once
}

// startAgent starts an agent with config overrides and extra fx options (e.g. a fake clock).
func (e *env) startAgent(overrides map[string]string, opts ...fx.Option) *agent {
	e.T.Helper()
	port := testenv.FreePort(e.T)
	params := configdef.Params{
		Overrides: map[string]string{
			"kubernetes.kubeconfig":  e.CP.Kubeconfig,
			"status.addr":            "127.0.0.1:0",
			"admission.bind_address": "127.0.0.1",
			"admission.port":         strconv.Itoa(port),
			"admission.url":          "https://127.0.0.1:" + strconv.Itoa(port),
		},
		Environ: []string{},
	}
	for k, v := range overrides {
		params.Overrides[k] = v
	}
	a := &agent{t: e.T.(*testing.T), port: port}
	a.app = fxtest.New(e.T,
		fx.Supply(params),
		lazyscale.Bundle(),
		fx.NopLogger,
		fx.Populate(&a.gate, &a.wm, &a.status, &a.admission, &a.webhook, &a.leader),
		fx.Options(opts...),
	)
	a.app.RequireStart()
	e.T.Cleanup(a.stop)
	return a
}

// allowLoopbackRecommenders lets the agent call the tests' recommenders, which listen on
// 127.0.0.1 (the default admits in-cluster Services only).
var allowLoopbackRecommenders = map[string]string{"autoscaling.workload.external_recommender.allowed_endpoints": "127.0.0.0/8"}

// withOverrides merges override maps, the later winning.
func withOverrides(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}

// stop stops the agent once; tests may stop it early, the cleanup then does nothing.
func (a *agent) stop() { a.stopOnce.Do(a.app.RequireStop) }

func (a *agent) get(path string) (int, []byte) {
	a.t.Helper()
	resp, err := http.Get("http://" + a.status.Addr() + path)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	return resp.StatusCode, body
}

// statusDoc is the /status document, decoded into the one schema the server, the CLI and the
// tests share.
func (a *agent) statusDoc() statusdef.Document {
	a.t.Helper()
	code, body := a.get("/status")
	require.Equal(a.t, http.StatusOK, code)
	var d statusdef.Document
	require.NoError(a.t, json.Unmarshal(body, &d), string(body))
	return d
}

// metric returns the value of one sample line of /metrics, e.g. `lazyscale_autoscaling_gate_open`.
func (a *agent) metric(name string) string {
	a.t.Helper()
	_, body := a.get("/metrics")
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func (a *agent) waitState(state wmdef.CollectionState) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.True(a.t, a.wm.WaitForCollectionState(ctx, wmdef.KindPod, state),
		"pod collection never reached %s (now %s)", state, a.wm.CollectionState(wmdef.KindPod))
}

func (a *agent) waitGate() {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.True(a.t, a.gate.Wait(ctx), "gate never opened")
}
