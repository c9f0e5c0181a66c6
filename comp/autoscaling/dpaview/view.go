// Package dpaview is every replica's typed view of the DPAs, kept from the shared DPA cache,
// and the pod patcher the admission webhook uses: it reads the leader's decisions (the DPAs'
// status) from the view, so followers patch exactly as the leader.
package dpaview

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/apiobject"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/lifecycle"
)

// Handler is told about changes of the view. Its functions are called after the view
// changed, outside its lock, from the informer's goroutine, in order.
type Handler struct {
	// OnChange gets the keys (namespace/name) a change may affect: the DPA and those sharing
	// its target.
	OnChange func(keys []string)
	// IgnoreStatus: OnChange is not called for an update that changed only the status (or
	// other fields the DPA's author does not write: resourceVersion, managedFields). The
	// controller's own status writes echo back as such updates.
	IgnoreStatus bool
	// OnRemove is called after a DPA was removed, with how many remain.
	OnRemove func(remaining int)
	// OnOrphan is called after a target lost its last DPA: the DPA was removed or now targets
	// another workload.
	OnOrphan func(target def.Target)
}

// View is the typed view of the DPAs. Objects are converted once per change, not per
// admission review. The objects it hands out are shared: never change one. Its read methods
// are safe for concurrent use.
type View struct {
	log      *zap.Logger
	informer cache.SharedIndexInformer
	synced   chan struct{}

	registry lifecycle.Handlers[Handler]
	handlers []Handler // sealed by Run

	mu       sync.RWMutex
	byKey    map[string]*v1alpha2.DatadogPodAutoscaler
	byTarget map[def.Target][]string // keys, oldest first
}

// Sizes implements def.Sizer.
func (v *View) Sizes() map[string]int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return map[string]int{"view.dpas": len(v.byKey), "view.targets": len(v.byTarget)}
}

// New builds the view over the shared DPA informer. It follows the informer only from Run.
func New(informer cache.SharedIndexInformer, log *zap.Logger) *View {
	return &View{log: log, informer: informer, synced: make(chan struct{}),
		byKey: map[string]*v1alpha2.DatadogPodAutoscaler{}, byTarget: map[def.Target][]string{}}
}

// AddHandler registers h. It must be called before Run, by the constructor of a part that
// follows the view (as an informer's handlers are added by a controller's constructor), so
// that no change is missed.
func (v *View) AddHandler(h Handler) error {
	if err := v.registry.Add(h); err != nil {
		return fmt.Errorf("dpaview: %w", err)
	}
	return nil
}

// Run follows the informer until ctx is done. The view is synced (Synced closed) once every
// DPA of the informer's initial list is in it. It returns nil when ctx ends.
func (v *View) Run(ctx context.Context) error {
	v.handlers = v.registry.Seal()
	reg, err := v.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    v.set,
		UpdateFunc: func(_, obj any) { v.set(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				v.remove(u.GetNamespace() + "/" + u.GetName())
			}
		},
	})
	if err != nil {
		return fmt.Errorf("follow DPAs: %w", err)
	}
	defer func() { _ = v.informer.RemoveEventHandler(reg) }()
	// The registration is synced once this handler has been given the informer's initial
	// list, which needs the informer itself synced first.
	if !cache.WaitForCacheSync(ctx.Done(), v.informer.HasSynced, reg.HasSynced) {
		return nil
	}
	close(v.synced)
	<-ctx.Done()
	return nil
}

// Synced is closed once the view holds the initial list of DPAs.
func (v *View) Synced() <-chan struct{} { return v.synced }

// HasSynced reports whether Synced is closed, as a cache.InformerSynced.
func (v *View) HasSynced() bool {
	select {
	case <-v.synced:
		return true
	default:
		return false
	}
}

func (v *View) set(obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	key := u.GetNamespace() + "/" + u.GetName()
	dpa, err := apiobject.DPA(u)
	if err != nil {
		v.log.Warn("not a valid DatadogPodAutoscaler; ignored", zap.String("dpa", key), zap.Error(err))
		v.remove(key)
		return
	}
	v.mu.Lock()
	affected := []string{key}
	old := v.byKey[key]
	statusOnly := old != nil && sameBesidesStatus(old, dpa)
	var orphaned *def.Target
	if old != nil && TargetOf(old) != TargetOf(dpa) {
		left := v.detachLocked(key, TargetOf(old))
		if len(left) == 0 {
			orphaned = new(TargetOf(old))
		}
		affected = append(affected, left...)
	}
	v.byKey[key] = dpa
	t := TargetOf(dpa)
	keys := v.byTarget[t]
	if !slices.Contains(keys, key) {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, v.olderFirstLocked)
	v.byTarget[t] = keys
	for _, k := range keys {
		if k != key {
			affected = append(affected, k)
		}
	}
	v.mu.Unlock()
	for _, h := range v.handlers {
		if h.OnChange != nil && !(statusOnly && h.IgnoreStatus) {
			h.OnChange(affected)
		}
		if orphaned != nil && h.OnOrphan != nil {
			h.OnOrphan(*orphaned)
		}
	}
}

// sameBesidesStatus: b differs from a at most in its status and in the metadata the apiserver
// writes (resourceVersion, managedFields).
func sameBesidesStatus(a, b *v1alpha2.DatadogPodAutoscaler) bool {
	return a.UID == b.UID && a.Generation == b.Generation && equality.Semantic.DeepEqual(a.Spec, b.Spec) &&
		maps.Equal(a.Annotations, b.Annotations) && maps.Equal(a.Labels, b.Labels) &&
		a.DeletionTimestamp.Equal(b.DeletionTimestamp) && slices.Equal(a.Finalizers, b.Finalizers)
}

func (v *View) remove(key string) {
	v.mu.Lock()
	old := v.byKey[key]
	var affected []string
	var target def.Target
	if old != nil {
		delete(v.byKey, key)
		target = TargetOf(old)
		affected = v.detachLocked(key, target)
	}
	remaining := len(v.byKey)
	v.mu.Unlock()
	for _, h := range v.handlers {
		if h.OnChange != nil {
			h.OnChange(append(slices.Clone(affected), key))
		}
		if old == nil {
			continue
		}
		if h.OnRemove != nil {
			h.OnRemove(remaining)
		}
		if len(affected) == 0 && h.OnOrphan != nil {
			h.OnOrphan(target)
		}
	}
}

// detachLocked removes key from its target's list and returns the keys left there.
func (v *View) detachLocked(key string, t def.Target) []string {
	keys := slices.DeleteFunc(v.byTarget[t], func(k string) bool { return k == key })
	if len(keys) == 0 {
		delete(v.byTarget, t)
		return nil
	}
	v.byTarget[t] = keys
	return slices.Clone(keys)
}

// olderFirstLocked orders DPAs by creation time, then by key: the order in which a target's
// conflicts and the active-DPA limit are decided.
func (v *View) olderFirstLocked(x, y string) int {
	dx, dy := v.byKey[x], v.byKey[y]
	if dx != nil && dy != nil {
		if c := dx.CreationTimestamp.Compare(dy.CreationTimestamp.Time); c != 0 {
			return c
		}
	}
	return strings.Compare(x, y)
}

// Get returns the DPA with this key (namespace/name), or nil.
func (v *View) Get(key string) *v1alpha2.DatadogPodAutoscaler {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.byKey[key]
}

// ForTarget returns the DPAs targeting t, oldest first.
func (v *View) ForTarget(t def.Target) []*v1alpha2.DatadogPodAutoscaler {
	v.mu.RLock()
	defer v.mu.RUnlock()
	keys := v.byTarget[t]
	out := make([]*v1alpha2.DatadogPodAutoscaler, 0, len(keys))
	for _, k := range keys {
		out = append(out, v.byKey[k])
	}
	return out
}

// Owner returns the oldest DPA targeting t: the one that owns it. nil if none.
func (v *View) Owner(t def.Target) *v1alpha2.DatadogPodAutoscaler {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if keys := v.byTarget[t]; len(keys) > 0 {
		return v.byKey[keys[0]]
	}
	return nil
}

// Rank returns how many DPAs are older than key (its position for the active limit).
func (v *View) Rank(key string) int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	n := 0
	for k := range v.byKey {
		if k != key && v.olderFirstLocked(k, key) < 0 {
			n++
		}
	}
	return n
}

// Keys returns every key.
func (v *View) Keys() []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	out := make([]string, 0, len(v.byKey))
	for k := range v.byKey {
		out = append(out, k)
	}
	return out
}

// KeysNewFirst returns the DPA keys, those no leader has reconciled yet (no condition) first:
// a new leader's first pass then reaches a DPA created during the takeover before it checks
// again the ones its predecessor handled.
func (v *View) KeysNewFirst() []string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var unseen, seen []string
	for k, dpa := range v.byKey {
		if len(dpa.Status.Conditions) == 0 {
			unseen = append(unseen, k)
		} else {
			seen = append(seen, k)
		}
	}
	slices.Sort(unseen)
	slices.Sort(seen)
	return append(unseen, seen...)
}

// Count is how many DPAs the view holds.
func (v *View) Count() int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.byKey)
}

// PatchedTargets returns, sorted, the targets of the DPAs whose new pods the webhook patches
// (Patches), the workloads the webhook's entry must cover.
func (v *View) PatchedTargets() []def.Target {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []def.Target
	for _, dpa := range v.byKey {
		if Patches(dpa) {
			out = append(out, TargetOf(dpa))
		}
	}
	slices.SortFunc(out, func(a, b def.Target) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}
