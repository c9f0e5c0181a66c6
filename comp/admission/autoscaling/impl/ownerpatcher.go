package impl

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// ownerPatcher is the patcher installed until the autoscaling stack brings its own: it marks a
// new pod with the DPA that targets the pod's workload (the autoscaler-id annotation), and
// changes nothing else. It reads the gate's shared DPA informer; no request leaves the process.
type ownerPatcher struct {
	dpas cache.Indexer
}

// PatchPod implements def.PodPatcher.
func (o *ownerPatcher) PatchPod(pod *corev1.Pod) (bool, error) {
	owner := wmdef.ResolveOwner(pod)
	if owner.Kind == "" {
		return false, nil
	}
	objs, err := o.dpas.ByIndex(cache.NamespaceIndex, pod.Namespace)
	if err != nil {
		return false, fmt.Errorf("look up autoscalers: %w", err)
	}
	for _, obj := range objs {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		kind, _, _ := unstructured.NestedString(u.Object, "spec", "targetRef", "kind")
		name, _, _ := unstructured.NestedString(u.Object, "spec", "targetRef", "name")
		if kind != owner.Kind || name != owner.Name {
			continue
		}
		id := u.GetNamespace() + "/" + u.GetName()
		if pod.Annotations[v1alpha2.AutoscalerIDAnnotation] == id {
			return false, nil
		}
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[v1alpha2.AutoscalerIDAnnotation] = id
		return true, nil
	}
	return false, nil
}
