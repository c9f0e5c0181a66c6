package profiles

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/kubeclient/informer"
)

// Queue keys: "profile/<name>" or "<Kind>/<namespace>/<name>".
const profileKeyPrefix = "profile/"

// generatedDPAName is the name of the DPA generated for a workload.
func generatedDPAName(group, kind, namespace, name string) string {
	sum := sha256.Sum256([]byte(group + "/" + kind + "/" + namespace + "/" + name))
	suffix := hex.EncodeToString(sum[:])[:8]
	const maxName = 253
	if len(name) > maxName-9 {
		name = name[:maxName-9]
	}
	return name + "-" + suffix
}

// templateHash identifies a profile's template: 16 hex of the SHA-256 of its JSON.
func templateHash(t v1alpha2.DatadogPodAutoscalerTemplate) string {
	b, _ := json.Marshal(t)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// trimMetadata keeps what the controller reads of a workload or namespace: its identity and
// its profile label. A cluster's workloads then cost a few hundred bytes each.
func trimMetadata(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil
	}
	out := &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion, DeletionTimestamp: m.DeletionTimestamp}}
	if v, ok := m.Labels[v1alpha2.ProfileLabel]; ok {
		out.Labels = map[string]string{v1alpha2.ProfileLabel: v}
	}
	return out, nil
}

// metadataInformer watches the metadata of gvr, trimmed. Workloads are many: the initial
// state streams (WatchList) rather than LISTing every page.
func metadataInformer(md metadata.Interface, gvr schema.GroupVersionResource, log *zap.Logger) cache.SharedIndexInformer {
	inf := informer.New(informer.Metadata(md.Resource(gvr), informer.Options{Streaming: true}), &metav1.PartialObjectMetadata{},
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}, informer.NewWatchErrors(log, gvr.Resource))
	_ = inf.SetTransform(trimMetadata) // before Run: cannot fail
	return inf
}

// generatedDPA builds the DPA a profile gives a workload.
func generatedDPA(prof *v1alpha2.DatadogPodAutoscalerClusterProfile, kind string, w *metav1.PartialObjectMetadata, name string) (*unstructured.Unstructured, error) {
	t := prof.Spec.Template.DeepCopy()
	dpa := &v1alpha2.DatadogPodAutoscaler{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha2.SchemeGroupVersion.String(), Kind: "DatadogPodAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.Namespace,
			Labels:          map[string]string{v1alpha2.GeneratedFromProfileLabel: prof.Name},
			Annotations:     map[string]string{v1alpha2.ProfileTemplateHashAnnotation: templateHash(prof.Spec.Template)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: w.Name, UID: w.UID}},
		},
		Spec: v1alpha2.DatadogPodAutoscalerSpec{
			TargetRef:   v1alpha2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: kind, Name: w.Name},
			Owner:       v1alpha2.DatadogPodAutoscalerLocalOwner,
			ApplyPolicy: t.ApplyPolicy, Objectives: t.Objectives, Fallback: t.Fallback, Constraints: t.Constraints, Options: t.Options,
		},
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(dpa)
	if err != nil {
		return nil, fmt.Errorf("encode generated DPA: %w", err)
	}
	u := &unstructured.Unstructured{Object: obj}
	delete(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}
