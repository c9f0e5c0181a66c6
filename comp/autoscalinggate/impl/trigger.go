package impl

import (
	"errors"
	"fmt"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	"github.com/lazyscale/lazyscale/comp/kubeclient/informer"
)

// labelWatch is one always-on, metadata-only, label-filtered watch whose first object opens
// the gate.
type labelWatch struct {
	kind     string
	informer cache.SharedIndexInformer
	errs     *informer.WatchErrors
}

// profileSelector matches objects opted into a cluster profile. "excluded" opts out, so it
// must not open the gate on its own. The apiserver evaluates it: no other object is sent.
func profileSelector() string {
	exists, _ := labels.NewRequirement(v1alpha2.ProfileLabel, selection.Exists, nil)
	notExcluded, _ := labels.NewRequirement(v1alpha2.ProfileLabel, selection.NotEquals, []string{v1alpha2.ProfileExcluded})
	return labels.NewSelector().Add(*exists, *notExcluded).String()
}

// openOnDPA opens the gate on the first DPA of the shared cache.
func openOnDPA(dpas cache.SharedIndexInformer, open func(def.Trigger) bool) error {
	if dpas == nil {
		return errors.New("autoscaling gate: workload autoscaling is enabled but the DPA cache has no informer")
	}
	if _, err := dpas.AddEventHandler(openOnAdd("DatadogPodAutoscaler", open)); err != nil {
		return fmt.Errorf("autoscaling gate: follow DPAs: %w", err)
	}
	return nil
}

// newLabelWatches builds the watches on the kinds a profile label opts in.
func newLabelWatches(md metadata.Interface, log *zap.Logger, open func(def.Trigger) bool) []*labelWatch {
	opts := informer.Options{LabelSelector: profileSelector()}
	var watches []*labelWatch
	for _, r := range v1alpha2.ProfileLabelledResources {
		w := &labelWatch{kind: r.Kind, errs: informer.NewWatchErrors(log, r.Kind)}
		w.informer = informer.New(informer.Metadata(md.Resource(r.Resource), opts), &metav1.PartialObjectMetadata{}, cache.Indexers{}, w.errs)
		_, _ = w.informer.AddEventHandler(openOnAdd(r.Kind, open)) // before Run: cannot fail
		watches = append(watches, w)
	}
	return watches
}

func openOnAdd(kind string, open func(def.Trigger) bool) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		if m, err := meta.Accessor(obj); err == nil {
			open(def.Trigger{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()})
		}
	}}
}
