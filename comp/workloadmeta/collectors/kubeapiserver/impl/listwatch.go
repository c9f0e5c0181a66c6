package impl

import (
	"context"
	"io"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// nonTerminalPods excludes Succeeded and Failed pods on the server: they are never scaled
// and can be most of a batch cluster.
var nonTerminalPods = fields.AndSelectors(
	fields.OneTermNotEqualSelector("status.phase", string(corev1.PodSucceeded)),
	fields.OneTermNotEqualSelector("status.phase", string(corev1.PodFailed)),
).String()

// podListWatch lists and watches non-terminal pods and converts every pod into a podObject
// (the slim entity) before the reflector sees it. It also decides, per reflector and without touching client-go's process-wide
// feature gates, whether the initial sync streams (WatchList) or pages through LIST.
type podListWatch struct {
	client kubernetes.Interface
	// namespace is the one namespace listed and watched; "" for all.
	namespace string
	pageSize  int64
	watchList bool
}

var (
	_ cache.ListerWatcherWithContext = (*podListWatch)(nil)
	_ cache.ListerWatcher            = (*podListWatch)(nil)
)

// IsWatchListSemanticsUnSupported is read by the reflector: true turns streaming lists off.
func (lw *podListWatch) IsWatchListSemanticsUnSupported() bool { return !lw.watchList }

func (lw *podListWatch) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	opts.FieldSelector = nonTerminalPods
	if opts.Continue == "" && opts.ResourceVersion == "0" {
		// "0" lets the apiserver answer from its cache in one unpaginated response: the whole
		// cluster's pods in one decode. An empty resourceVersion is a consistent, paginated list.
		opts.ResourceVersion = ""
		opts.ResourceVersionMatch = ""
	}
	if opts.Limit == 0 || opts.Limit > lw.pageSize {
		opts.Limit = lw.pageSize
	}
	list, err := lw.client.CoreV1().Pods(lw.namespace).List(ctx, opts)
	if err != nil {
		return nil, err
	}
	page := &podObjectList{ListMeta: list.ListMeta, Items: make([]podObject, len(list.Items))}
	for i := range list.Items {
		page.Items[i] = *newPodObject(&list.Items[i])
	}
	return page, nil
}

func (lw *podListWatch) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.FieldSelector = nonTerminalPods
	w, err := lw.client.CoreV1().Pods(lw.namespace).Watch(ctx, opts)
	if err != nil {
		if ctx.Err() != nil {
			// Shutting down. The reflector treats EOF as a normal close, which this is, and
			// logs anything else as an error.
			return nil, io.EOF
		}
		return nil, err
	}
	return newConvertingWatch(w, func(ev watch.Event) watch.Event {
		if p, ok := ev.Object.(*corev1.Pod); ok {
			if ev.Type == watch.Bookmark {
				ev.Object = bookmarkObject(p)
			} else {
				ev.Object = newPodObject(p)
			}
		}
		return ev
	}), nil
}

// convertingWatch converts each event of a watch. Unlike apimachinery's watch.Filter, its
// goroutine also ends when the consumer stops the watch with an event in hand, instead of
// blocking forever on a send nobody receives.
type convertingWatch struct {
	in   watch.Interface
	out  chan watch.Event
	stop chan struct{}
	once sync.Once
}

func newConvertingWatch(in watch.Interface, convert func(watch.Event) watch.Event) *convertingWatch {
	cw := &convertingWatch{in: in, out: make(chan watch.Event), stop: make(chan struct{})}
	go cw.loop(convert)
	return cw
}

func (cw *convertingWatch) loop(convert func(watch.Event) watch.Event) {
	defer close(cw.out)
	for {
		select {
		case ev, ok := <-cw.in.ResultChan():
			if !ok {
				return
			}
			select {
			case cw.out <- convert(ev):
			case <-cw.stop:
				return
			}
		case <-cw.stop:
			return
		}
	}
}

func (cw *convertingWatch) ResultChan() <-chan watch.Event { return cw.out }

// Stop stops the upstream watch and the converting goroutine. Idempotent.
func (cw *convertingWatch) Stop() {
	cw.once.Do(func() {
		close(cw.stop)
		cw.in.Stop()
	})
}

// List and Watch satisfy the context-free interface some client-go helpers still ask for.
func (lw *podListWatch) List(opts metav1.ListOptions) (runtime.Object, error) {
	return lw.ListWithContext(context.Background(), opts)
}

func (lw *podListWatch) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return lw.WatchWithContext(context.Background(), opts)
}
