// Package podwatcher follows workloadmeta's pods of autoscaled workloads: how many per target,
// how many ready, how many per recommendation version. It keeps only the targets' pods, so
// its memory follows the autoscaled workloads, not the cluster.
package podwatcher

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/lifecycle"
)

// podInfo is what the watcher keeps of one pod of a target.
type podInfo struct {
	ready bool
	recID string
	// pod is workloadmeta's entity (shared, never changed: an update replaces it).
	pod *wmdef.Pod
}

// targetPods are the live pods of one target.
type targetPods struct {
	pods map[string]podInfo // by UID
}

// Counts summarise a target's pods.
type Counts struct {
	Current, Ready int32
	// ByRecID counts pods per rec-id annotation ("" for none).
	ByRecID map[string]int32
}

// Handler is told about pod changes, from the watcher's goroutine.
type Handler struct {
	// OnChange is called when a target's pods changed.
	OnChange func(def.Target)
	// OnPatchedPod is called for a pod that appeared after the watcher started and carries
	// lazyscale's autoscaler-id and rec-id annotations: a pod the webhook patched.
	OnPatchedPod func(p *wmdef.Pod)
}

// Watcher is the pod watcher. Its read methods are safe for concurrent use.
type Watcher struct {
	wm wmdef.Component
	// wanted says whether some DPA still autoscales a target: a backfill of one nobody does
	// keeps nothing.
	wanted func(def.Target) bool

	registry lifecycle.Handlers[Handler]
	handlers []Handler // sealed by Run

	mu      sync.RWMutex
	targets map[def.Target]*targetPods

	track chan followRequest
}

// followRequest asks the watcher's goroutine to backfill a target; done is closed once it has.
type followRequest struct {
	target def.Target
	done   chan struct{}
}

// Sizes implements def.Sizer.
func (w *Watcher) Sizes() map[string]int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return map[string]int{"podwatcher.targets": len(w.targets)}
}

// New builds the watcher over workloadmeta. It subscribes only from Run. wanted says whether a
// target still has a DPA (nil: every target does); it is asked under the watcher's lock, so it
// must not call the watcher.
//
// Why it is asked: a reconcile that read a DPA just before its deletion may Follow its target
// after the deletion's Forget. The backfill asks wanted and adds the target under one lock,
// and the view removes a DPA before it tells the controller to Forget, so either the backfill
// sees the DPA gone and keeps nothing, or the Forget comes after it.
func New(wm wmdef.Component, wanted func(def.Target) bool) *Watcher {
	if wanted == nil {
		wanted = func(def.Target) bool { return true }
	}
	return &Watcher{wm: wm, wanted: wanted, targets: map[def.Target]*targetPods{}, track: make(chan followRequest, 64)}
}

// AddHandler registers h. It must be called before Run, by the constructor of the part that
// follows the pods.
func (w *Watcher) AddHandler(h Handler) error {
	if err := w.registry.Add(h); err != nil {
		return fmt.Errorf("podwatcher: %w", err)
	}
	return nil
}

// Follow asks the watcher to keep the pods of t (idempotent) and returns once it does: Counts
// and PodStates then hold t's pods in workloadmeta's store, not zero pods of a target the
// watcher has not backfilled yet. The backfill runs on the watcher's goroutine (in order with
// the pod events around it), which never waits on a caller; Follow returns early, without
// the pods, only when ctx ends.
func (w *Watcher) Follow(ctx context.Context, t def.Target) {
	w.mu.RLock()
	_, ok := w.targets[t]
	w.mu.RUnlock()
	if ok {
		return
	}
	req := followRequest{target: t, done: make(chan struct{})}
	select {
	case w.track <- req:
	case <-ctx.Done():
		return
	}
	select {
	case <-req.done:
	case <-ctx.Done():
	}
}

// Counts returns the summary for t (zero if not followed yet).
func (w *Watcher) Counts(t def.Target) Counts {
	w.mu.RLock()
	defer w.mu.RUnlock()
	c := Counts{ByRecID: map[string]int32{}}
	tp := w.targets[t]
	if tp == nil {
		return c
	}
	for _, p := range tp.pods {
		c.Current++
		if p.ready {
			c.Ready++
		}
		c.ByRecID[p.recID]++
	}
	return c
}

// Run processes pod events and Follow requests until ctx is done. One goroutine does both,
// so a backfill and the events around it apply in order. It returns nil when ctx ends or
// workloadmeta stops.
func (w *Watcher) Run(ctx context.Context) error {
	w.handlers = w.registry.Seal()
	sub := w.wm.Subscribe("autoscaling-podwatcher", wmdef.Filter{Kinds: []wmdef.Kind{wmdef.KindPod}})
	defer sub.Unsubscribe()
	first := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case req := <-w.track:
			w.backfill(req.target)
			close(req.done)
		case bundle, ok := <-sub.Events():
			if !ok {
				return nil
			}
			w.apply(bundle, !first && !bundle.Relist)
			first = false
		}
	}
}

func (w *Watcher) backfill(t def.Target) {
	w.mu.Lock()
	if _, ok := w.targets[t]; ok || !w.wanted(t) {
		w.mu.Unlock()
		return
	}
	tp := &targetPods{pods: map[string]podInfo{}}
	w.targets[t] = tp
	w.mu.Unlock()
	for _, e := range w.wm.List(wmdef.KindPod) {
		p, ok := e.(*wmdef.Pod)
		if !ok || p.Namespace != t.Namespace || p.Owner.Kind != t.Kind || p.Owner.Name != t.Name {
			continue
		}
		w.mu.Lock()
		tp.pods[p.UID] = info(p)
		w.mu.Unlock()
	}
	w.changed(t)
}

func (w *Watcher) changed(t def.Target) {
	for _, h := range w.handlers {
		if h.OnChange != nil {
			h.OnChange(t)
		}
	}
}

func (w *Watcher) apply(bundle wmdef.EventBundle, live bool) {
	changed := map[def.Target]bool{}
	var patched []*wmdef.Pod
	w.mu.Lock()
	for _, ev := range bundle.Events {
		p, ok := ev.Entity.(*wmdef.Pod)
		if !ok {
			continue
		}
		t := def.Target{Namespace: p.Namespace, Kind: p.Owner.Kind, Name: p.Owner.Name}
		tp := w.targets[t]
		if tp == nil {
			continue
		}
		switch ev.Type {
		case wmdef.EventTypeSet:
			_, known := tp.pods[p.UID]
			tp.pods[p.UID] = info(p)
			if live && !known && p.AutoscalerID != "" && p.RecID != "" {
				patched = append(patched, p)
			}
		case wmdef.EventTypeUnset:
			delete(tp.pods, p.UID)
		}
		changed[t] = true
	}
	w.mu.Unlock()
	for _, p := range patched {
		for _, h := range w.handlers {
			if h.OnPatchedPod != nil {
				h.OnPatchedPod(p)
			}
		}
	}
	for t := range changed {
		w.changed(t)
	}
}

// Forget drops a target nobody autoscales any more.
func (w *Watcher) Forget(t def.Target) {
	w.mu.Lock()
	delete(w.targets, t)
	w.mu.Unlock()
}

func info(p *wmdef.Pod) podInfo {
	return podInfo{ready: p.Ready, recID: p.RecID, pod: p}
}

// PodStates returns t's pods for the recommendation sources, by name.
func (w *Watcher) PodStates(t def.Target) []def.PodState {
	w.mu.RLock()
	tp := w.targets[t]
	var pods []*wmdef.Pod
	if tp != nil {
		pods = make([]*wmdef.Pod, 0, len(tp.pods))
		for _, p := range tp.pods {
			pods = append(pods, p.pod)
		}
	}
	w.mu.RUnlock()
	slices.SortFunc(pods, func(a, b *wmdef.Pod) int { return strings.Compare(a.Name, b.Name) })
	out := make([]def.PodState, 0, len(pods))
	for _, p := range pods {
		ps := def.PodState{Name: p.Name, Ready: p.Ready}
		for _, h := range p.Containers {
			c := h.Value()
			ps.Containers = append(ps.Containers, def.ContainerResources{Name: c.Name, Requests: c.Requests.List(), Limits: c.Limits.List()})
		}
		for _, k := range p.OOMKills {
			ps.OOMKills = append(ps.OOMKills, def.OOMKill{Container: k.Container, At: k.At})
		}
		out = append(out, ps)
	}
	return out
}

// Followed is how many targets the watcher keeps pods for.
func (w *Watcher) Followed() int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return len(w.targets)
}
