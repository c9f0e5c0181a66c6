package impl

import (
	"context"
	"sync"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
)

// triggerWatch is one always-on watch whose first object opens the gate.
type triggerWatch struct {
	kind     string
	informer cache.SharedIndexInformer
	log      *zap.Logger

	mu      sync.Mutex
	lastErr error
}

// profileSelector matches objects opted into a cluster profile. "excluded" opts out, so it
// must not open the gate on its own. The apiserver evaluates it: no other object is sent.
func profileSelector() string {
	exists, _ := labels.NewRequirement(v1alpha2.ProfileLabel, selection.Exists, nil)
	notExcluded, _ := labels.NewRequirement(v1alpha2.ProfileLabel, selection.NotEquals, []string{v1alpha2.ProfileExcluded})
	return labels.NewSelector().Add(*exists, *notExcluded).String()
}

// newTriggerWatches builds the DPA watch (full objects: DPAs are few and small, and the
// controllers share this informer) and the metadata-only, label-filtered watches on
// Deployments, StatefulSets and Namespaces.
func newTriggerWatches(dyn dynamic.Interface, md metadata.Interface, log *zap.Logger, open func(def.Trigger)) []*triggerWatch {
	dpaClient := dyn.Resource(v1alpha2.DatadogPodAutoscalersResource)
	dpa := cache.NewSharedIndexInformer(&pagedListWatch{ListWatch: cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return dpaClient.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return dpaClient.Watch(ctx, o)
		},
	}}, &unstructured.Unstructured{}, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	watches := []*triggerWatch{{kind: "DatadogPodAutoscaler", informer: dpa}}

	selector := profileSelector()
	for _, t := range []struct {
		kind string
		gvr  schema.GroupVersionResource
	}{
		{"Deployment", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}},
		{"StatefulSet", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}},
		{"Namespace", schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}},
	} {
		client := md.Resource(t.gvr)
		inf := cache.NewSharedIndexInformer(&pagedListWatch{ListWatch: cache.ListWatch{
			ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				o.LabelSelector = selector
				return client.List(ctx, o)
			},
			WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				o.LabelSelector = selector
				return client.Watch(ctx, o)
			},
		}}, &metav1.PartialObjectMetadata{}, 0, cache.Indexers{})
		watches = append(watches, &triggerWatch{kind: t.kind, informer: inf})
	}

	for _, w := range watches {
		w.log = log.With(zap.String("watch", w.kind))
		kind := w.kind
		// Handlers registered before Run cannot fail.
		_, _ = w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				if m, err := metaOf(obj); err == nil {
					open(def.Trigger{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()})
				}
			},
		})
		_ = w.informer.SetWatchErrorHandler(w.onError)
	}
	return watches
}

// pagedListWatch pins the trigger watches to LIST + WATCH rather than client-go's default
// streaming list (WatchList). Their results are tiny (label-filtered metadata, a handful of
// DPAs), so streaming saves nothing, and against a resource that is not served (no CRD) a
// streaming attempt costs a failed WATCH and then a failed LIST on every retry.
type pagedListWatch struct {
	cache.ListWatch
}

// IsWatchListSemanticsUnSupported is read by the reflector: true turns streaming lists off.
func (*pagedListWatch) IsWatchListSemanticsUnSupported() bool { return true }

func metaOf(obj any) (metav1.Object, error) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	return meta.Accessor(obj)
}

// onError replaces client-go's default handler, which logs every retry. A missing CRD is the
// normal state of a cluster that never installed autoscaling, so it is logged once at info;
// other errors are logged when they change. The reflector retries with backoff either way.
func (w *triggerWatch) onError(_ *cache.Reflector, err error) {
	w.mu.Lock()
	prev := w.lastErr
	w.lastErr = err
	w.mu.Unlock()
	switch {
	case apierrors.IsNotFound(err):
		if prev == nil || !apierrors.IsNotFound(prev) {
			w.log.Info("resource not served (CRD not installed?); gate stays closed, retrying with backoff", zap.Error(err))
		}
	case prev == nil || prev.Error() != err.Error():
		w.log.Warn("trigger watch failed; retrying with backoff", zap.Error(err))
	default:
		w.log.Debug("trigger watch failed again", zap.Error(err))
	}
}

// ready is true once the watch has synced, or while its resource is not served at all: a
// cluster without the DPA CRD is a healthy, dormant cluster.
func (w *triggerWatch) ready() bool {
	if w.informer.HasSynced() {
		return true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr != nil && apierrors.IsNotFound(w.lastErr)
}

func (w *triggerWatch) run(ctx context.Context) { w.informer.RunWithContext(ctx) }
