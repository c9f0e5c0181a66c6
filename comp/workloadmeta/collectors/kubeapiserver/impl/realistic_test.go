package impl

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// realisticPod is a pod as a Deployment creates it in a production cluster: three containers
// with env and probes, a dozen labels and annotations, volumes, and the managedFields of
// server-side apply and of the kubelet's status updates.
func realisticPod(i int) *corev1.Pod {
	t := true
	res := func(cpu, mem string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)},
		}
	}
	env := make([]corev1.EnvVar, 12)
	for j := range env {
		env[j] = corev1.EnvVar{Name: fmt.Sprintf("SETTING_%02d", j), Value: fmt.Sprintf("value-%d-for-setting-%d", i, j)}
	}
	container := func(name, image string, r corev1.ResourceRequirements) corev1.Container {
		return corev1.Container{
			Name: name, Image: image, Env: env, Resources: r,
			Ports:                  []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			ReadinessProbe:         &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstrPort(8080)}}, PeriodSeconds: 10},
			LivenessProbe:          &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/live", Port: intstrPort(8080)}}, PeriodSeconds: 10},
			VolumeMounts:           []corev1.VolumeMount{{Name: "config", MountPath: "/etc/config"}, {Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
			TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			ImagePullPolicy: corev1.PullIfNotPresent,
		}
	}
	fields := `{"f:metadata":{"f:annotations":{".":{},"f:checksum/config":{}},"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{},"f:team":{},"f:version":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"1\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:env":{},"f:image":{},"f:name":{},"f:resources":{".":{},"f:limits":{},"f:requests":{}}}}}}`
	now := metav1.NewTime(time.Unix(1700000000, 0))
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              fmt.Sprintf("checkout-6b7f9c8d5-%05d", i),
			GenerateName:      "checkout-6b7f9c8d5-",
			Namespace:         fmt.Sprintf("team-%d", i%10),
			UID:               types.UID(fmt.Sprintf("8a3c1f2e-0000-4000-8000-%012d", i)),
			ResourceVersion:   fmt.Sprint(100000 + i),
			CreationTimestamp: now,
			Labels: map[string]string{
				"app": "checkout", "pod-template-hash": "6b7f9c8d5", "team": "payments", "version": "v2.14.1",
				"app.kubernetes.io/name": "checkout", "app.kubernetes.io/instance": "checkout-prod",
				"app.kubernetes.io/part-of": "shop", "app.kubernetes.io/managed-by": "helm", "tier": "backend", "env": "prod",
			},
			Annotations: map[string]string{
				"checksum/config":                   "4f1d2c3b4a5968778695a4b3c2d1e0f9e8d7c6b5a49382716",
				"kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z",
				"prometheus.io/scrape":              "true", "prometheus.io/port": "9090",
				"cluster-autoscaler.kubernetes.io/safe-to-evict": "true",
				"autoscaling.datadoghq.com/rec-id":               "abc",
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "checkout-6b7f9c8d5", UID: "1", Controller: &t, BlockOwnerDeletion: &t}},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}},
				{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}, Subresource: "status"},
			},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{
				container("app", "registry.example/shop/checkout:v2.14.1", res("250m", "512Mi")),
				container("proxy", "registry.example/mesh/proxy:1.22.3", res("100m", "128Mi")),
				container("log-shipper", "registry.example/obs/shipper:3.1.0", res("50m", "64Mi")),
			},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "checkout-config"}}}},
				{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}},
			},
			NodeName: fmt.Sprintf("node-%03d", i%300), ServiceAccountName: "checkout", RestartPolicy: corev1.RestartPolicyAlways,
			Tolerations: []corev1.Toleration{{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			},
			HostIP: "10.1.2.3", PodIP: fmt.Sprintf("10.8.%d.%d", i/250%250, i%250), StartTime: &now,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", Ready: true, Image: "registry.example/shop/checkout:v2.14.1", ImageID: "registry.example/shop/checkout@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ContainerID: "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
				{Name: "proxy", Ready: true, Image: "registry.example/mesh/proxy:1.22.3", ImageID: "registry.example/mesh/proxy@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ContainerID: "containerd://1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
				{Name: "log-shipper", Ready: true, Image: "registry.example/obs/shipper:3.1.0", ImageID: "registry.example/obs/shipper@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ContainerID: "containerd://2123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
			},
		},
	}
}

func intstrPort(p int32) intstr.IntOrString { return intstr.FromInt32(p) }

// modestPod is a smaller pod, as many clusters run them: two containers with a dozen env vars,
// four labels, two annotations, applied server-side (one Apply managedFields entry, and the
// kubelet's status update).
func modestPod(i int) *corev1.Pod {
	t := true
	env := make([]corev1.EnvVar, 12)
	for j := range env {
		env[j] = corev1.EnvVar{Name: fmt.Sprintf("SETTING_%02d", j), Value: fmt.Sprintf("value-%d", j)}
	}
	res := func(cpu, mem string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(mem)},
		}
	}
	applied := `{"f:metadata":{"f:annotations":{"f:checksum/config":{}},"f:labels":{"f:app":{},"f:pod-template-hash":{},"f:team":{},"f:version":{}},"f:ownerReferences":{"k:{\"uid\":\"1\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:env":{},"f:image":{},"f:name":{},"f:resources":{}},"k:{\"name\":\"sidecar\"}":{".":{},"f:env":{},"f:image":{},"f:name":{},"f:resources":{}}}}}`
	status := `{"f:status":{"f:conditions":{},"f:containerStatuses":{},"f:phase":{},"f:podIP":{},"f:startTime":{}}}`
	now := metav1.NewTime(time.Unix(1700000000, 0))
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              fmt.Sprintf("api-5c9d7f8b6-%05d", i),
			Namespace:         fmt.Sprintf("team-%d", i%10),
			UID:               types.UID(fmt.Sprintf("5d2e9a10-0000-4000-8000-%012d", i)),
			ResourceVersion:   fmt.Sprint(200000 + i),
			CreationTimestamp: now,
			Labels:            map[string]string{"app": "api", "pod-template-hash": "5c9d7f8b6", "team": "payments", "version": "v1.8.0"},
			Annotations:       map[string]string{"checksum/config": "9a8b7c6d5e4f30211203f4e5d6c7b8a9", "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"},
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "api-5c9d7f8b6", UID: "1", Controller: &t, BlockOwnerDeletion: &t}},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1", Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(applied)}},
				{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1", Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(status)}, Subresource: "status"},
			},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{
				{Name: "app", Image: "registry.example/shop/api:v1.8.0", Env: env, Resources: res("200m", "256Mi")},
				{Name: "sidecar", Image: "registry.example/mesh/proxy:1.22.3", Env: env, Resources: res("50m", "64Mi")},
			},
			NodeName: fmt.Sprintf("node-%03d", i%300),
		},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}},
			PodIP:      fmt.Sprintf("10.8.%d.%d", i/250%250, i%250), StartTime: &now,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", Ready: true, Image: "registry.example/shop/api:v1.8.0", ContainerID: "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
				{Name: "sidecar", Ready: true, Image: "registry.example/mesh/proxy:1.22.3", ContainerID: "containerd://1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
			},
		},
	}
}
