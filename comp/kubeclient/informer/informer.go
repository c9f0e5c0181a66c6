// Package informer builds the list-watches and watch-error handlers of lazyscale's informers,
// so that every informer pins its initial-list mode explicitly (client-go streams by default)
// and logs a failing watch the same quiet way: a resource that is not served (a CRD not
// installed) is the normal state of a dormant cluster, said once, not at every retry.
package informer

import (
	"context"
	"sync"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
)

// Options shape a list-watch.
type Options struct {
	// LabelSelector is evaluated by the apiserver: only matching objects are sent.
	LabelSelector string
	// Streaming lets the reflector fetch the initial state as one streaming watch
	// (sendInitialEvents). Off: a paginated LIST, then a WATCH. Small results (a few DPAs,
	// label-filtered metadata) save nothing by streaming, and against a resource that is not
	// served a streaming attempt costs a failed WATCH and then a failed LIST on every retry.
	Streaming bool
}

// listWatch is a cache.ListWatch whose streaming mode is pinned.
type listWatch struct {
	cache.ListWatch
	streaming bool
}

// IsWatchListSemanticsUnSupported is read by the reflector: true turns streaming lists off.
func (lw *listWatch) IsWatchListSemanticsUnSupported() bool { return !lw.streaming }

func newListWatch(o Options, list func(context.Context, metav1.ListOptions) (runtime.Object, error),
	w func(context.Context, metav1.ListOptions) (watch.Interface, error)) cache.ListerWatcher {
	return &listWatch{streaming: o.Streaming, ListWatch: cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) {
			lo.LabelSelector = o.LabelSelector
			return list(ctx, lo)
		},
		WatchFuncWithContext: func(ctx context.Context, lo metav1.ListOptions) (watch.Interface, error) {
			lo.LabelSelector = o.LabelSelector
			return w(ctx, lo)
		},
	}}
}

// Dynamic lists and watches r as unstructured objects.
func Dynamic(r dynamic.ResourceInterface, o Options) cache.ListerWatcher {
	return newListWatch(o,
		func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) { return r.List(ctx, lo) },
		r.Watch)
}

// Metadata lists and watches r as *metav1.PartialObjectMetadata.
func Metadata(r metadata.ResourceInterface, o Options) cache.ListerWatcher {
	return newListWatch(o,
		func(ctx context.Context, lo metav1.ListOptions) (runtime.Object, error) { return r.List(ctx, lo) },
		r.Watch)
}

// WatchErrors is a reflector's watch-error handler that logs without flooding: "not served"
// once at info, another error when it differs from the last one, a repeat at debug. The
// reflector retries with backoff either way. Safe for concurrent use.
type WatchErrors struct {
	log  *zap.Logger
	what string

	mu   sync.Mutex
	last error
}

// NewWatchErrors logs through log; what names the watched kind in the messages
// ("DatadogPodAutoscaler").
func NewWatchErrors(log *zap.Logger, what string) *WatchErrors {
	return &WatchErrors{log: log.With(zap.String("watch", what)), what: what}
}

// Handle is a cache.WatchErrorHandlerWithContext.
func (w *WatchErrors) Handle(_ context.Context, _ *cache.Reflector, err error) {
	w.mu.Lock()
	prev := w.last
	w.last = err
	w.mu.Unlock()
	switch {
	case apierrors.IsNotFound(err):
		if prev == nil || !apierrors.IsNotFound(prev) {
			w.log.Info(w.what+" not served (CRD not installed?); retrying with backoff", zap.Error(err))
		}
	case prev == nil || prev.Error() != err.Error():
		w.log.Warn(w.what+" watch failed; retrying with backoff", zap.Error(err))
	default:
		w.log.Debug(w.what+" watch failed again", zap.Error(err))
	}
}

// NotServed reports whether the last error said the resource is not served.
func (w *WatchErrors) NotServed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last != nil && apierrors.IsNotFound(w.last)
}

// New builds a shared informer on lw whose watch errors go to errs.
func New(lw cache.ListerWatcher, example runtime.Object, indexers cache.Indexers, errs *WatchErrors) cache.SharedIndexInformer {
	inf := cache.NewSharedIndexInformer(lw, example, 0, indexers)
	_ = inf.SetWatchErrorHandlerWithContext(errs.Handle) // before Run: cannot fail
	return inf
}
