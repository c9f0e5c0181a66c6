package integration

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// holdResize keeps kwok from finishing a pod's in-place resize (hack/controlplane/kwok/pod-resize.yaml),
// so that the test can report it Deferred or Infeasible as a kubelet would.
const holdResize = "kwok.lazyscale.dev/hold-resize"

func podUIDs(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, string(p.UID))
	}
	return out
}

// resized checks that a pod's spec and status (as the kubelet reports it) both say cpu/memory.
func resized(version, cpu, memory, memoryLimit string) func(corev1.Pod) string {
	spec := hasResources("app", version, cpu, memory, memoryLimit)
	return func(p corev1.Pod) string {
		if msg := spec(p); msg != "" {
			return msg
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == "app" && cs.Resources != nil && cs.Resources.Requests.Cpu().String() == cpu && cs.Resources.Requests.Memory().String() == memory {
				return ""
			}
		}
		return "status resources not updated yet"
	}
}

// With update.strategy Auto (the default), a recommendation is applied to the running pods in
// place: the same pods (same UIDs) run with the recommended resources, in spec and in the
// status the kubelet (kwok) reports, with the rec-id; the Deployment is not rolled out; the DPA
// records ResizeTriggered then ResizeCompleted, with the events.
func TestInPlaceResize(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	e.runningDeployment(ns, "web", 2)
	before := podUIDs(e.RunningPods(ns, "web"))
	e.startAgent(nil)
	e.dpa(ns, "web", "web", map[string]string{
		v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m", "memory": "200Mi"}}]`,
	}, nil)
	version := e.waitVerticalTarget(ns, "web").Version
	pods := e.waitPodsRunWith(ns, "web", 2, resized(version, "300m", "200Mi", "400Mi"))
	assert.ElementsMatch(t, before, podUIDs(pods), "the same pods, resized in place")
	for _, p := range pods {
		assert.JSONEq(t, `{"app":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"cpu":null,"memory":"256Mi"}}}`,
			p.Annotations[v1alpha2.OriginalResourcesAnnotation], "what the pod had, as the Cluster Agent records it")
	}
	require.Eventually(t, func() bool {
		last := e.getDPA(ns, "web").Status.Vertical.LastAction
		return last != nil && last.Type == "ResizeCompleted" && last.Version == version
	}, waitFor, 100*time.Millisecond, "never ResizeCompleted: %v", dpaState{e, ns, "web"})
	assert.NotEmpty(t, e.events(ns, "web", "ResizeTriggered"))
	assert.Len(t, e.events(ns, "web", "ResizeSuccessful"), 1)
	assert.Empty(t, e.events(ns, "web", "SuccessfulTriggerRollout"), "no rollout")
	dep, err := e.Kube.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), dep.Generation, "the Deployment is never written")
	assert.NotEmpty(t, e.LazyscaleRequests("pods", "patch"), "pods/resize through the apiserver")
}

// A resize the kubelet reports Infeasible, or Deferred for longer than resizePendingPeriod, is
// rolled out instead: the pods are replaced and run with the recommendation.
func TestInPlaceResizeFallsBackToRollout(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	ctx := context.Background()
	for _, name := range []string{"infeasible", "deferred"} {
		d := testenv.Deployment(ns, name, nil)
		d.Spec.Replicas = testenv.Ptr(int32(1))
		d.Spec.Template.Annotations = map[string]string{holdResize: "true"}
		d.Spec.Template.Spec.Containers[0].Resources = *appResources.DeepCopy()
		_, err := e.Kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		require.NoError(t, err)
		e.waitRunning(ns, name, 1)
	}
	old := map[string]string{"infeasible": e.RunningPods(ns, "infeasible")[0].Name, "deferred": e.RunningPods(ns, "deferred")[0].Name}
	e.startAgent(nil)
	force := map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]`}
	e.dpa(ns, "infeasible", "infeasible", force, nil)
	e.dpa(ns, "deferred", "deferred", force, map[string]any{"spec.applyPolicy.update.resizePendingPeriod": int64(2)})

	// As a kubelet would: the resize is pending, with a reason.
	for name, reason := range map[string]string{"infeasible": "Infeasible", "deferred": "Deferred"} {
		version := e.waitVerticalTarget(ns, name).Version
		require.Eventually(t, func() bool {
			pod, err := e.Kube.CoreV1().Pods(ns).Get(ctx, old[name], metav1.GetOptions{})
			if err != nil || pod.Annotations[v1alpha2.RecommendationIDAnnotation] != version {
				return false // not resized yet
			}
			pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: "PodResizePending", Status: corev1.ConditionTrue,
				Reason: reason, Message: "node does not have enough cpu", LastTransitionTime: metav1.Now()})
			_, err = e.Kube.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
			return err == nil
		}, waitFor, 100*time.Millisecond, "%s: the pod was never resized", name)
	}
	for name, reason := range map[string]string{"infeasible": "Infeasible", "deferred": "Deferred"} {
		version := e.getDPA(ns, name).Status.Vertical.Target.Version
		e.waitPodsRunWith(ns, name, 1, func(p corev1.Pod) string {
			if p.Name == old[name] {
				return "not replaced yet"
			}
			return hasResources("app", version, "300m", "128Mi", "256Mi")(p)
		})
		rollouts := e.events(ns, name, "SuccessfulTriggerRollout")
		require.Len(t, rollouts, 1, name)
		assert.Contains(t, rollouts[0].Message, reason, name)
		last := e.getDPA(ns, name).Status.Vertical.LastAction
		require.NotNil(t, last)
		assert.Equal(t, "RolloutTriggered", last.Type, name)
	}
}

// options.burstable (or a profile's preview annotation {"burstable": true}) removes the CPU
// limit of the containers lazyscale sets resources for; status.options.burstable says it is in
// effect. A limit cannot be removed in place: with Auto, the pods are rolled out instead.
func TestBurstableRemovesTheCPULimit(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("shop", nil)
	ctx := context.Background()
	for _, name := range []string{"spec", "preview"} {
		d := testenv.Deployment(ns, name, nil)
		d.Spec.Replicas = testenv.Ptr(int32(1))
		d.Spec.Template.Spec.Containers[0].Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
		}
		_, err := e.Kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		require.NoError(t, err)
		e.waitRunning(ns, name, 1)
	}
	e.startAgent(nil)
	force := `[{"name": "app", "requests": {"cpu": "200m"}}]`
	e.dpa(ns, "spec", "spec", map[string]string{v1alpha2.ForceResourcesAnnotation: force}, map[string]any{"spec.options.burstable": true})
	e.dpa(ns, "preview", "preview", map[string]string{v1alpha2.ForceResourcesAnnotation: force, v1alpha2.PreviewAnnotation: `{"burstable": true}`}, nil)
	for _, name := range []string{"spec", "preview"} {
		version := e.waitVerticalTarget(ns, name).Version
		e.waitPodsRunWith(ns, name, 1, func(p corev1.Pod) string {
			if msg := hasResources("app", version, "200m", "128Mi", "256Mi")(p); msg != "" {
				return msg
			}
			if l, ok := p.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU]; ok {
				return "CPU limit " + l.String()
			}
			return ""
		})
		opts := e.getDPA(ns, name).Status.Options
		require.NotNil(t, opts, name)
		require.NotNil(t, opts.Burstable, name)
		assert.True(t, *opts.Burstable, name)
		rollouts := e.events(ns, name, "SuccessfulTriggerRollout")
		require.Len(t, rollouts, 1, name)
		assert.Contains(t, rollouts[0].Message, "would gain or lose a request or limit", name)
	}
}
