package fx

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/goleak"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	webhookdef "github.com/lazyscale/lazyscale/comp/admission/autoscaling/def"
	webhookfx "github.com/lazyscale/lazyscale/comp/admission/autoscaling/fx"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	gatefx "github.com/lazyscale/lazyscale/comp/autoscalinggate/fx"
	dpacachefx "github.com/lazyscale/lazyscale/comp/dpacache/fx"
	leaderelectionfx "github.com/lazyscale/lazyscale/comp/leaderelection/fx"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	wmfx "github.com/lazyscale/lazyscale/comp/workloadmeta/fx"
	"github.com/lazyscale/lazyscale/fxutil/fxutiltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type stack struct {
	fx.In
	Stack    def.Component
	Gate     gatedef.Component
	Store    wmdef.Component
	Webhook  webhookdef.Component
	Sections []statusdef.Section `group:"status_sections"`
}

func (s stack) doc() statusdef.Document {
	var d statusdef.Document
	for _, sec := range s.Sections {
		sec.Fill(&d)
	}
	return d
}

// deps are the stack's component dependencies, real, on fake clients. No pod collector: the
// tests say when workloadmeta's pods have synced.
func deps(core fx.Option) fx.Option {
	return fx.Options(core, leaderelectionfx.Module(), dpacachefx.Module(), gatefx.Module(), wmfx.Module(), webhookfx.Module(), Module())
}

func TestModule(t *testing.T) {
	core, _ := fxutiltest.FakeCore(t, nil)
	s := fxutiltest.Component[stack](t, deps(core))
	assert.Equal(t, def.StateWaitingForGate, s.Stack.State())
	d := s.doc()
	require.NotNil(t, d.Autoscaling)
	assert.Equal(t, def.StateWaitingForGate, d.Autoscaling.State)
	assert.Nil(t, d.Autoscaling.Leader, "no leader field before the stack runs")
}

// The pod patcher reads the DPA view, so it must not go live before the DPA cache has synced:
// a patcher on an empty view admits the pods of autoscaled workloads without their
// recommendation. The DPA LIST is held back while the gate is open and the pods are synced;
// the patcher waits for it, and when it is installed the view already holds the DPA.
func TestPatcherWaitsForTheDPACache(t *testing.T) {
	core, fakes := fxutiltest.FakeCore(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), fxutiltest.WaitFor)
	defer cancel()
	_, err := fakes.Dynamic.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace("shop").Create(ctx, fxutiltest.DPA("shop", "web", "web"), metav1.CreateOptions{})
	require.NoError(t, err)
	listed := make(chan struct{})
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	var once sync.Once
	fakes.Dynamic.PrependReactor("list", "datadogpodautoscalers", func(k8stesting.Action) (bool, runtime.Object, error) {
		once.Do(func() { close(listed) })
		<-release
		return false, nil, nil // on to the tracker
	})
	s := fxutiltest.Component[stack](t, deps(core))
	t.Cleanup(releaseOnce) // before the app stops (cleanups run last first)

	select {
	case <-listed:
	case <-ctx.Done():
		t.Fatal("the DPA cache never listed")
	}
	s.Gate.Open(gatedef.Trigger{Kind: "Config"})
	s.Store.SetCollectionState(wmdef.KindPod, wmdef.StateSynced)
	assert.Never(t, func() bool { return s.Webhook.PatcherInstalled() || s.Stack.State() == def.StateRunning },
		500*time.Millisecond, 10*time.Millisecond, "patcher installed, or stack running, before the DPA cache synced")
	assert.Equal(t, def.StateWaitingForCaches, s.Stack.State())

	releaseOnce()
	require.Eventually(t, s.Webhook.PatcherInstalled, fxutiltest.WaitFor, 10*time.Millisecond)
	d := s.doc()
	require.NotNil(t, d.Autoscalers)
	assert.Equal(t, 1, *d.Autoscalers, "the view held the DPA when the patcher went live")
	select {
	case <-s.Stack.Running():
	case <-ctx.Done():
		t.Fatal("the stack never ran")
	}
}
