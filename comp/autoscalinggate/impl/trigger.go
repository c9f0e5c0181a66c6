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

// openOnDPA opens the gate on a DPA of the shared cache; gone is told when one goes.
func openOnDPA(dpas cache.SharedIndexInformer, open func(def.Trigger) bool, gone func()) error {
	if dpas == nil {
		return errors.New("autoscaling gate: workload autoscaling is enabled but the DPA cache has no informer")
	}
	if _, err := dpas.AddEventHandler(openOnAdd("DatadogPodAutoscaler", open, gone)); err != nil {
		return fmt.Errorf("autoscaling gate: follow DPAs: %w", err)
	}
	return nil
}

// newLabelWatches builds the watches on the kinds a profile label opts in.
func newLabelWatches(md metadata.Interface, log *zap.Logger, open func(def.Trigger) bool, gone func()) []*labelWatch {
	opts := informer.Options{LabelSelector: profileSelector()}
	var watches []*labelWatch
	for _, r := range v1alpha2.ProfileLabelledResources {
		w := &labelWatch{kind: r.Kind, errs: informer.NewWatchErrors(log, r.Kind)}
		w.informer = informer.New(informer.Metadata(md.Resource(r.Resource), opts), &metav1.PartialObjectMetadata{}, cache.Indexers{}, w.errs)
		_, _ = w.informer.AddEventHandler(openOnAdd(r.Kind, open, gone)) // before Run: cannot fail
		watches = append(watches, w)
	}
	return watches
}

// openOnAdd opens the gate on every object added (a closed gate reopens; an open one ignores
// it) and tells gone about every object deleted (the idle monitor counts what is left).
func openOnAdd(kind string, open func(def.Trigger) bool, gone func()) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if m, err := meta.Accessor(obj); err == nil {
				open(def.Trigger{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()})
			}
		},
		DeleteFunc: func(any) { gone() },
	}
}
