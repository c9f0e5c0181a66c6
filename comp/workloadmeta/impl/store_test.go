package impl

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t *testing.T) def.Component {
	t.Helper()
	p, err := NewComponent(Requires{Logger: zap.NewNop(), Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Stop(context.Background())) })
	return p.Comp
}

func pod(uid string) *def.Pod { return &def.Pod{Namespace: "ns", Name: "p-" + uid, UID: uid} }

func recv(t *testing.T, sub def.Subscription) def.EventBundle {
	t.Helper()
	select {
	case b, ok := <-sub.Events():
		require.True(t, ok, "channel closed")
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("no bundle")
		return def.EventBundle{}
	}
}

func ids(b def.EventBundle) []string {
	out := make([]string, 0, len(b.Events))
	for _, e := range b.Events {
		out = append(out, fmt.Sprintf("%s:%s", e.Type, e.Entity.GetID().ID))
	}
	return out
}

func TestSubscriptionGetsStateThenBundles(t *testing.T) {
	s := newStore(t)
	s.Set(pod("a"), pod("b"))
	sub := s.Subscribe("test", def.Filter{Kinds: []def.Kind{def.KindPod}})
	defer sub.Unsubscribe()

	assert.ElementsMatch(t, []string{"set:a", "set:b"}, ids(recv(t, sub)))

	s.Set(pod("c"))
	assert.Equal(t, []string{"set:c"}, ids(recv(t, sub)))
	s.Unset(def.EntityID{Kind: def.KindPod, ID: "a"}, def.EntityID{Kind: def.KindPod, ID: "absent"})
	assert.Equal(t, []string{"unset:a"}, ids(recv(t, sub)))

	s.Reset(def.KindPod, []def.Entity{pod("b"), pod("d")})
	assert.ElementsMatch(t, []string{"set:b", "set:d", "unset:c"}, ids(recv(t, sub)))
	assert.Equal(t, 2, s.Count(def.KindPod))
	_, ok := s.Get(def.EntityID{Kind: def.KindPod, ID: "c"})
	assert.False(t, ok)
}

func TestSlowSubscriberLosesNothingAndBlocksNobody(t *testing.T) {
	s := newStore(t)
	slow := s.Subscribe("slow", def.Filter{})
	defer slow.Unsubscribe()
	recv(t, slow) // initial, empty

	const n = 1000
	for i := range n {
		s.Set(pod(fmt.Sprint(i))) // never blocks although nobody reads
	}
	for i := range n {
		assert.Equal(t, []string{fmt.Sprintf("set:%d", i)}, ids(recv(t, slow)), "bundles arrive in order")
	}
}

func TestFilterByEventType(t *testing.T) {
	s := newStore(t)
	s.Set(pod("a"))
	sub := s.Subscribe("unsets", def.Filter{EventType: def.EventTypeUnset})
	defer sub.Unsubscribe()
	assert.Empty(t, recv(t, sub).Events, "initial state has only set events, filtered out")
	s.Set(pod("b"))
	s.Unset(def.EntityID{Kind: def.KindPod, ID: "a"})
	assert.Equal(t, []string{"unset:a"}, ids(recv(t, sub)))
}

func TestUnsubscribeClosesAndStopEndsAll(t *testing.T) {
	p, err := NewComponent(Requires{Logger: zap.NewNop(), Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	s := p.Comp
	a := s.Subscribe("a", def.Filter{})
	b := s.Subscribe("b", def.Filter{})
	a.Unsubscribe()
	a.Unsubscribe()
	for range a.Events() { // drains until closed
	}
	require.NoError(t, p.Stop(context.Background()))
	for range b.Events() {
	}
	late := s.Subscribe("late", def.Filter{})
	for range late.Events() {
	}
	s.Set(pod("x")) // no subscriber left, must not block or panic
}

func TestCollectionStateWait(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan bool)
	go func() { done <- s.WaitForCollectionState(ctx, def.KindPod, def.StateSynced) }()
	s.SetCollectionState(def.KindPod, def.StateDormant)
	s.SetCollectionState(def.KindPod, def.StateSyncing)
	s.SetCollectionState(def.KindPod, def.StateSynced)
	assert.True(t, <-done)
	assert.Equal(t, def.StateSynced, s.CollectionState(def.KindPod))

	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	assert.False(t, s.WaitForCollectionState(cctx, def.KindPod, def.StateOff))
}

func TestResetWhereReplacesOnlyItsPart(t *testing.T) {
	s := newStore(t)
	in := func(ns string) *def.Pod { return &def.Pod{Namespace: ns, Name: "p", UID: ns + "-p"} }
	s.Set(in("a"), in("b"), &def.Pod{Namespace: "a", Name: "q", UID: "a-q"})
	sub := s.Subscribe("test", def.Filter{Kinds: []def.Kind{def.KindPod}})
	defer sub.Unsubscribe()
	first := recv(t, sub)
	assert.False(t, first.Relist, "the first bundle is the current state, not a list")

	inA := func(e def.Entity) bool { return e.(*def.Pod).Namespace == "a" }
	s.ResetWhere(def.KindPod, inA, []def.Entity{in("a")})
	b := recv(t, sub)
	assert.True(t, b.Relist)
	assert.ElementsMatch(t, []string{"set:a-p", "unset:a-q"}, ids(b))
	assert.Equal(t, 2, s.Count(def.KindPod), "b's pod untouched")

	s.ResetWhere(def.KindPod, inA, nil) // a's last DPA went
	assert.ElementsMatch(t, []string{"unset:a-p"}, ids(recv(t, sub)))
	_, ok := s.Get(def.EntityID{Kind: def.KindPod, ID: "b-p"})
	assert.True(t, ok)

	s.Set(in("c"))
	assert.False(t, recv(t, sub).Relist, "a watch event is not a list")
}

func TestSyncedScope(t *testing.T) {
	s := newStore(t)
	assert.False(t, s.Synced(def.KindPod, "a"))
	s.SetSynced(def.KindPod, def.SyncScope{Namespaces: map[string]bool{"a": true}})
	assert.True(t, s.Synced(def.KindPod, "a"))
	assert.False(t, s.Synced(def.KindPod, "b"))
	s.SetSynced(def.KindPod, def.SyncScope{ClusterWide: true})
	assert.True(t, s.Synced(def.KindPod, "b"))
}
