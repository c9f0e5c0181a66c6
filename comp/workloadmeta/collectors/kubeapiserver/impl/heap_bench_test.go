package impl

import (
	"context"
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	wmimpl "github.com/lazyscale/lazyscale/comp/workloadmeta/impl"
)

const heapBenchPods = 5000

// podShapes are the pods the heap benchmark holds: the rich pods of a production Deployment
// (realisticPod) and modest ones (modestPod).
var podShapes = []struct {
	name string
	pod  func(int) *corev1.Pod
}{{"rich", realisticPod}, {"modest", modestPod}}

// encodedPods are pods in the protobuf wire form an informer receives, so that each decoded
// pod owns its strings as it would in a real process.
func encodedPods(b *testing.B, pod func(int) *corev1.Pod) [][]byte {
	out := make([][]byte, heapBenchPods)
	for i := range out {
		raw, err := pod(i).Marshal()
		if err != nil {
			b.Fatal(err)
		}
		out[i] = raw
	}
	return out
}

func decode(b *testing.B, raw []byte) *corev1.Pod {
	p := &corev1.Pod{}
	if err := p.Unmarshal(raw); err != nil {
		b.Fatal(err)
	}
	return p
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkHeapPerPod compares the heap one pod costs held the usual way (a client-go store
// of full *corev1.Pod, what a plain SharedInformer keeps) with lazyscale's slim entity, for
// rich and modest pods. "entities" holds the slim entities alone; "workloadmeta" holds them in
// the store, its map included (the difference is the store's cost). Run with -benchtime=1x;
// the figures are the bytes/pod metrics.
func BenchmarkHeapPerPod(b *testing.B) {
	for _, shape := range podShapes {
		raw := encodedPods(b, shape.pod)

		b.Run(shape.name+"/informer-corev1.Pod", func(b *testing.B) {
			for range b.N {
				before := heapInUse()
				store := cache.NewStore(cache.MetaNamespaceKeyFunc)
				for _, r := range raw {
					if err := store.Add(decode(b, r)); err != nil {
						b.Fatal(err)
					}
				}
				after := heapInUse()
				b.ReportMetric(float64(after-before)/heapBenchPods, "bytes/pod")
				runtime.KeepAlive(store)
			}
		})

		b.Run(shape.name+"/entities", func(b *testing.B) {
			for range b.N {
				before := heapInUse()
				held := make([]*wmdef.Pod, 0, heapBenchPods)
				for _, r := range raw {
					held = append(held, newPodObject(decode(b, r)).entity)
				}
				after := heapInUse()
				b.ReportMetric(float64(after-before)/heapBenchPods, "bytes/pod")
				runtime.KeepAlive(held)
			}
		})

		b.Run(shape.name+"/workloadmeta", func(b *testing.B) {
			for range b.N {
				before := heapInUse()
				p, err := wmimpl.NewComponent(wmimpl.Requires{Logger: zap.NewNop(), Registerer: prometheus.NewRegistry()})
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range raw {
					p.Comp.Set(newPodObject(decode(b, r)).entity)
				}
				after := heapInUse()
				if p.Comp.Count(wmdef.KindPod) != heapBenchPods {
					b.Fatalf("stored %d pods", p.Comp.Count(wmdef.KindPod))
				}
				b.ReportMetric(float64(after-before)/heapBenchPods, "bytes/pod")
				runtime.KeepAlive(p.Comp)
				_ = p.Stop(context.Background())
			}
		})
	}
}
