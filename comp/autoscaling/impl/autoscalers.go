package impl

import (
	"slices"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// targetKey names a workload in a namespace.
type targetKey struct {
	Namespace, Kind, Name string
}

func (t targetKey) String() string { return t.Namespace + "/" + t.Kind + "/" + t.Name }

func targetOf(dpa *v1alpha2.DatadogPodAutoscaler) targetKey {
	return targetKey{Namespace: dpa.Namespace, Kind: dpa.Spec.TargetRef.Kind, Name: dpa.Spec.TargetRef.Name}
}

// autoscalers is every replica's typed view of the DPAs, fed by the gate's shared informer
// (one watch, one cache): the controller reads specs from it and the pod patcher reads the
// leader's decisions (the status) from it. Objects are converted once per change, not per
// admission review. The objects it hands out are shared: never change one.
type autoscalers struct {
	mu       sync.RWMutex
	byKey    map[string]*v1alpha2.DatadogPodAutoscaler
	byTarget map[targetKey][]string // keys, oldest first
	// onChange is called, outside the lock, with the keys a change may affect: the DPA and
	// those sharing its target.
	onChange func(keys []string)
	// onRemove is called, outside the lock, after a DPA was removed, with how many remain and
	// whether its target has no DPA left.
	onRemove func(remaining int, target targetKey, orphan bool)
	// onConvertError reports an object that is not a valid DPA.
	onConvertError func(key string, err error)
}

func newAutoscalers() *autoscalers {
	return &autoscalers{byKey: map[string]*v1alpha2.DatadogPodAutoscaler{}, byTarget: map[targetKey][]string{}}
}

// handler is the informer event handler that keeps the view.
func (a *autoscalers) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.set(obj) },
		UpdateFunc: func(_, obj any) { a.set(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if u, ok := obj.(*unstructured.Unstructured); ok {
				a.remove(u.GetNamespace() + "/" + u.GetName())
			}
		},
	}
}

func (a *autoscalers) set(obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	key := u.GetNamespace() + "/" + u.GetName()
	dpa := &v1alpha2.DatadogPodAutoscaler{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, dpa); err != nil {
		if a.onConvertError != nil {
			a.onConvertError(key, err)
		}
		a.remove(key)
		return
	}
	a.mu.Lock()
	affected := []string{key}
	if old := a.byKey[key]; old != nil && targetOf(old) != targetOf(dpa) {
		affected = append(affected, a.detachLocked(key, targetOf(old))...)
	}
	a.byKey[key] = dpa
	t := targetOf(dpa)
	keys := a.byTarget[t]
	if !slices.Contains(keys, key) {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(x, y string) int { return a.olderFirst(x, y) })
	a.byTarget[t] = keys
	for _, k := range keys {
		if k != key {
			affected = append(affected, k)
		}
	}
	a.mu.Unlock()
	if a.onChange != nil {
		a.onChange(affected)
	}
}

func (a *autoscalers) remove(key string) {
	a.mu.Lock()
	old := a.byKey[key]
	var affected []string
	var target targetKey
	if old != nil {
		delete(a.byKey, key)
		target = targetOf(old)
		affected = a.detachLocked(key, target)
	}
	remaining := len(a.byKey)
	a.mu.Unlock()
	if a.onChange != nil {
		a.onChange(append(affected, key))
	}
	if old != nil && a.onRemove != nil {
		a.onRemove(remaining, target, len(affected) == 0)
	}
}

// detachLocked removes key from its target's list and returns the keys left there.
func (a *autoscalers) detachLocked(key string, t targetKey) []string {
	keys := slices.DeleteFunc(a.byTarget[t], func(k string) bool { return k == key })
	if len(keys) == 0 {
		delete(a.byTarget, t)
		return nil
	}
	a.byTarget[t] = keys
	return slices.Clone(keys)
}

// olderFirst orders DPAs by creation time, then by key: the order in which a target's
// conflicts and the active-DPA limit are decided.
func (a *autoscalers) olderFirst(x, y string) int {
	dx, dy := a.byKey[x], a.byKey[y]
	if dx != nil && dy != nil {
		if c := dx.CreationTimestamp.Compare(dy.CreationTimestamp.Time); c != 0 {
			return c
		}
	}
	return strings.Compare(x, y)
}

// get returns the DPA with this key (namespace/name), or nil.
func (a *autoscalers) get(key string) *v1alpha2.DatadogPodAutoscaler {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.byKey[key]
}

// forTarget returns the DPAs targeting t, oldest first.
func (a *autoscalers) forTarget(t targetKey) []*v1alpha2.DatadogPodAutoscaler {
	a.mu.RLock()
	defer a.mu.RUnlock()
	keys := a.byTarget[t]
	out := make([]*v1alpha2.DatadogPodAutoscaler, 0, len(keys))
	for _, k := range keys {
		out = append(out, a.byKey[k])
	}
	return out
}

// owner returns the oldest DPA targeting t: the one that owns it. nil if none.
func (a *autoscalers) owner(t targetKey) *v1alpha2.DatadogPodAutoscaler {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if keys := a.byTarget[t]; len(keys) > 0 {
		return a.byKey[keys[0]]
	}
	return nil
}

// rank returns how many DPAs are older than key (its position for the active limit).
func (a *autoscalers) rank(key string) int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	n := 0
	for k := range a.byKey {
		if k != key && a.olderFirst(k, key) < 0 {
			n++
		}
	}
	return n
}

// keys returns every key.
func (a *autoscalers) keys() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]string, 0, len(a.byKey))
	for k := range a.byKey {
		out = append(out, k)
	}
	return out
}

func (a *autoscalers) count() int {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return len(a.byKey)
}
