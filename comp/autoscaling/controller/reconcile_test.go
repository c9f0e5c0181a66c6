package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/dpaview"
)

// A status write refused because the DPA was deleted or changed meanwhile is not a failed
// reconcile: the informer brings the deletion or the newer DPA. Any other refusal is.
func TestStatusWriteOfAGoneOrChangedDPA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A DPA without a target: evaluation sets an Error condition, so its status is written.
	dpa := &unstructured.Unstructured{}
	dpa.SetAPIVersion(v1alpha2.SchemeGroupVersion.String())
	dpa.SetKind("DatadogPodAutoscaler")
	dpa.SetNamespace("shop")
	dpa.SetName("web")
	res := v1alpha2.DatadogPodAutoscalersResource
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{res: "DatadogPodAutoscalerList"}, dpa)
	informer := dynamicinformer.NewFilteredDynamicInformer(dyn, res, "", 0, cache.Indexers{}, nil).Informer()
	view := dpaview.New(informer, zaptest.NewLogger(t))
	go informer.RunWithContext(ctx)
	go func() { _ = view.Run(ctx) }()
	select {
	case <-view.Synced():
	case <-ctx.Done():
		t.Fatal("the view never synced")
	}
	require.NotNil(t, view.Get("shop/web"))

	gr := res.GroupResource()
	for _, tc := range []struct {
		name    string
		refusal error
		failed  bool
	}{
		{"deleted", apierrors.NewNotFound(gr, "web"), false},
		{"changed", apierrors.NewConflict(gr, "web", errors.New("the object has been modified")), false},
		{"apiserver error", apierrors.NewInternalError(errors.New("etcd unavailable")), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writes := 0
			dyn.PrependReactor("update", "datadogpodautoscalers", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "status" {
					return false, nil, nil
				}
				writes++
				return true, nil, tc.refusal
			})
			c := &Controller{log: zaptest.NewLogger(t), dyn: dyn, view: view, now: time.Now}
			_, err := c.reconcile(ctx, "shop/web")
			assert.Equal(t, 1, writes, "the status was written")
			if tc.failed {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}
