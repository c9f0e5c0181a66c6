package impl

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	e := podEntity(p)
	assert.Equal(t, p.Namespace, e.Namespace)
	assert.Equal(t, p.Name, e.Name)
	assert.Equal(t, string(p.UID), e.UID)
	assert.Equal(t, wmdef.Owner{Kind: "Deployment", Name: "checkout"}, e.Owner)
	assert.True(t, e.Ready)
	assert.Equal(t, "Running", e.Phase)
	assert.Equal(t, p.Labels, e.Labels)
	assert.Equal(t, map[string]string{"autoscaling.datadoghq.com/rec-id": "abc"}, e.Annotations)
	require.Len(t, e.Containers, 3)
	assert.Equal(t, "app", e.Containers[0].Name)
	got := map[string]string{}
	for _, r := range e.Containers[0].Requests {
		got[r.Name] = r.Quantity().String()
	}
	assert.Equal(t, map[string]string{"cpu": "250m", "memory": "512Mi"}, got)
}
