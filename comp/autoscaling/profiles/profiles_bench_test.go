package profiles

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// workloadMetadata is a Deployment's metadata as the apiserver sends it: labels, a
// last-applied annotation, managed fields.
func workloadMetadata(i int) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		Name: fmt.Sprintf("service-%05d", i), Namespace: fmt.Sprintf("team-%03d", i%300), UID: types.UID(fmt.Sprintf("6a3f0e1c-1d2b-4c5e-9f8a-%012d", i)),
		ResourceVersion: "123456789", Generation: 7,
		Labels: map[string]string{"app": fmt.Sprintf("service-%05d", i), "team": fmt.Sprintf("team-%03d", i%300), "tier": "backend",
			"app.kubernetes.io/managed-by": "Helm", v1alpha2.ProfileLabel: "standard"},
		Annotations: map[string]string{"deployment.kubernetes.io/revision": "12",
			"kubectl.kubernetes.io/last-applied-configuration": strings.Repeat("x", 1500)},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "helm", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "apps/v1",
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(strings.Repeat("f", 2000))}}},
	}}
}

// BenchmarkProfileWorkloadCache reports the heap one workload costs in the profile
// controller's cache, trimmed (as it runs) and untrimmed (a plain metadata informer).
func BenchmarkProfileWorkloadCache(b *testing.B) {
	const n = 10000
	for _, trimmed := range []bool{true, false} {
		b.Run(fmt.Sprintf("trimmed=%v", trimmed), func(b *testing.B) {
			for range b.N {
				store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
				before := heapInUse()
				for i := range n {
					var obj any = workloadMetadata(i)
					if trimmed {
						obj, _ = trimMetadata(obj)
					}
					_ = store.Add(obj)
				}
				after := heapInUse()
				b.ReportMetric(float64(after-before)/n, "heap-bytes/workload")
				runtime.KeepAlive(store)
			}
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
