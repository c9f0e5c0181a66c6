package impl

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

func controlled(kind, name string) []metav1.OwnerReference {
	t := true
	return []metav1.OwnerReference{{Kind: kind, Name: name, Controller: &t}}
}

func TestOwnerResolution(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		refs   []metav1.OwnerReference
		want   wmdef.Owner
	}{
		{"deployment via replicaset hash", map[string]string{"pod-template-hash": "5d8f7b9c4"}, controlled("ReplicaSet", "web-5d8f7b9c4"), wmdef.Owner{Kind: "Deployment", Name: "web"}},
		{"deployment name with dashes", map[string]string{"pod-template-hash": "abc12"}, controlled("ReplicaSet", "my-web-app-abc12"), wmdef.Owner{Kind: "Deployment", Name: "my-web-app"}},
		{"bare replicaset, no hash label", nil, controlled("ReplicaSet", "web-5d8f7b9c4"), wmdef.Owner{Kind: "ReplicaSet", Name: "web-5d8f7b9c4"}},
		{"hash does not match name", map[string]string{"pod-template-hash": "zzz"}, controlled("ReplicaSet", "web-5d8f7b9c4"), wmdef.Owner{Kind: "ReplicaSet", Name: "web-5d8f7b9c4"}},
		{"statefulset direct", nil, controlled("StatefulSet", "db"), wmdef.Owner{Kind: "StatefulSet", Name: "db"}},
		{"no controller", nil, []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "x"}}, wmdef.Owner{}},
		{"no owner", nil, nil, wmdef.Owner{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: tt.labels, OwnerReferences: tt.refs}}
			assert.Equal(t, tt.want, owner(p))
			assert.Equal(t, tt.want, podEntity(p).Owner)
		})
	}
}

func TestSlimEntityKeepsOnlyWhatAutoscalingReads(t *testing.T) {
	p := realisticPod(0)
	p.Annotations[v1alpha2.AutoscalerIDAnnotation] = "team-0/checkout"
	e := podEntity(p)
	assert.Equal(t, p.Namespace, e.Namespace)
	assert.Equal(t, p.Name, e.Name)
	assert.Equal(t, string(p.UID), e.UID)
	assert.Equal(t, wmdef.Owner{Kind: "Deployment", Name: "checkout"}, e.Owner)
	assert.True(t, e.Ready)
	assert.Equal(t, "Running", e.Phase)
	assert.Equal(t, "abc", e.RecID)
	assert.Equal(t, "team-0/checkout", e.AutoscalerID)
	cs := e.ContainerList()
	require.Len(t, cs, 3)
	assert.Equal(t, "app", cs[0].Name)
	assert.Equal(t, map[string]string{"cpu": "250m", "memory": "512Mi"}, quantities(cs[0].Requests.List()))
	assert.Equal(t, map[string]string{"memory": "512Mi"}, quantities(cs[0].Limits.List()), "a memory limit, no cpu limit")

	// Two pods of one workload share their containers: one interned copy.
	other := podEntity(realisticPod(1))
	for i := range e.Containers {
		assert.Equal(t, e.Containers[i], other.Containers[i], "unique.Handle equality is pointer equality")
	}
}

func TestResourcesRoundTrip(t *testing.T) {
	in := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("1500m"),
		corev1.ResourceMemory:           resource.MustParse("1Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("2Gi"),
		"nvidia.com/gpu":                resource.MustParse("1"),
	}
	out := wmdef.NewResources(in).List()
	require.Len(t, out, 4)
	for name, q := range in {
		got := out[name]
		assert.Zero(t, q.Cmp(got), "%s: %s became %s", name, q.String(), got.String())
	}
	assert.Nil(t, wmdef.NewResources(nil).List())
	only := wmdef.NewResources(corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}).List()
	assert.Equal(t, map[string]string{"memory": "64Mi"}, quantities(only))
}

func quantities(rl corev1.ResourceList) map[string]string {
	out := map[string]string{}
	for name, q := range rl {
		out[string(name)] = q.String()
	}
	return out
}

func TestNativeSidecarsAreContainers(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	p := modestPod(0)
	p.Spec.InitContainers = []corev1.Container{{Name: "init"}, {Name: "mesh", RestartPolicy: &always}}
	names := []string{}
	for _, c := range podEntity(p).ContainerList() {
		names = append(names, c.Name)
	}
	assert.Equal(t, []string{"app", "sidecar", "mesh"}, names)
}

// Pods of one workload share one copy of each repeated string, even when a GC runs between
// them (it did not with unique.Make(s).Value(): nothing kept the handle alive).
func TestInternedStringsStayShared(t *testing.T) {
	first := intern(strings.Clone("shop-web-interned-test"))
	runtime.GC()
	runtime.GC()
	again := intern(strings.Clone("shop-web-interned-test"))
	assert.Equal(t, unsafe.StringData(first), unsafe.StringData(again), "a second copy after a GC")

	// Generations: a string in use is promoted; the table holds at most 2×limit.
	in := &interner{limit: 4}
	hot := in.intern("hot")
	for i := range 20 {
		in.intern(fmt.Sprintf("cold-%d", i))
		assert.Equal(t, unsafe.StringData(hot), unsafe.StringData(in.intern("hot")), "the hot string was copied again at %d", i)
		assert.LessOrEqual(t, len(in.cur)+len(in.prev), 2*in.limit)
	}
}
