package podwatcher

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	wmimpl "github.com/lazyscale/lazyscale/comp/workloadmeta/impl"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The first reconcile of a new DPA follows its target and reads the counts at once: they must
// be the pods already in the store, not zero (the recommenders would be told of no replicas).
func TestFollowReturnsWithTheTargetsPods(t *testing.T) {
	p, err := wmimpl.NewComponent(wmimpl.Requires{Logger: zap.NewNop(), Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Stop(context.Background())) })
	wm := p.Comp
	owner := wmdef.Owner{Kind: "Deployment", Name: "web"}
	wm.Set(&wmdef.Pod{Namespace: "shop", Name: "web-1", UID: "1", Owner: owner, Ready: true},
		&wmdef.Pod{Namespace: "shop", Name: "web-2", UID: "2", Owner: owner},
		&wmdef.Pod{Namespace: "shop", Name: "api-1", UID: "3", Owner: wmdef.Owner{Kind: "Deployment", Name: "api"}})

	w := New(wm, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	target := def.Target{Namespace: "shop", Kind: "Deployment", Name: "web"}
	w.Follow(ctx, target)
	c := w.Counts(target)
	assert.Equal(t, int32(2), c.Current)
	assert.Equal(t, int32(1), c.Ready)
	assert.Len(t, w.PodStates(target), 2)
	assert.Equal(t, 1, w.Followed())
}

// Follow gives up when its context ends, whether the watcher never runs or is stopped.
func TestFollowReturnsWhenItsContextEnds(t *testing.T) {
	p, err := wmimpl.NewComponent(wmimpl.Requires{Logger: zap.NewNop(), Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Stop(context.Background())) })
	w := New(p.Comp, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.Follow(ctx, def.Target{Namespace: "shop", Kind: "Deployment", Name: "web"})
	assert.Zero(t, w.Counts(def.Target{Namespace: "shop", Kind: "Deployment", Name: "web"}).Current)
}

// A target no DPA autoscales any more is not kept by a Follow that comes after its Forget: what
// a reconcile that read the DPA just before its deletion does.
func TestFollowKeepsOnlyWantedTargets(t *testing.T) {
	p, err := wmimpl.NewComponent(wmimpl.Requires{Logger: zap.NewNop(), Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Stop(context.Background())) })
	web, api := def.Target{Namespace: "shop", Kind: "Deployment", Name: "web"}, def.Target{Namespace: "shop", Kind: "Deployment", Name: "api"}
	w := New(p.Comp, func(t def.Target) bool { return t == web })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	w.Follow(ctx, web)
	w.Follow(ctx, api)
	assert.Equal(t, 1, w.Followed())
	assert.Equal(t, map[string]int{"podwatcher.targets": 1}, w.Sizes())
	w.Forget(web)
	assert.Zero(t, w.Followed())
}
