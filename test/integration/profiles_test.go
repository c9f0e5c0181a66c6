package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/profiles"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// generatedName is the Cluster Agent's contract: <workload>-<first 8 hex of
// sha256("<Kind>.<group>/<namespace>/<name>")>.
func generatedName(kind, ns, name string) string {
	sum := sha256.Sum256([]byte(kind + ".apps/" + ns + "/" + name))
	return name + "-" + hex.EncodeToString(sum[:])[:8]
}

// lookupDPA returns the DPA, or nil when it does not exist.
func (e *env) lookupDPA(ns, name string) *v1alpha2.DatadogPodAutoscaler {
	e.T.Helper()
	u, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(e.T, err)
	dpa := &v1alpha2.DatadogPodAutoscaler{}
	require.NoError(e.T, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, dpa))
	return dpa
}

func (e *env) waitDPA(ns, name string, check func(*v1alpha2.DatadogPodAutoscaler) bool) *v1alpha2.DatadogPodAutoscaler {
	e.T.Helper()
	var dpa *v1alpha2.DatadogPodAutoscaler
	ok := assert.Eventually(e.T, func() bool {
		dpa = e.lookupDPA(ns, name)
		return dpa != nil && (check == nil || check(dpa))
	}, waitFor, 100*time.Millisecond)
	if !ok {
		require.FailNow(e.T, "DPA "+ns+"/"+name+" never as expected", "last: %+v", dpa)
	}
	return dpa
}

func (e *env) waitNoDPA(ns, name string) {
	e.T.Helper()
	require.Eventually(e.T, func() bool { return e.lookupDPA(ns, name) == nil }, waitFor, 100*time.Millisecond, "DPA %s/%s never deleted", ns, name)
}

func (e *env) profile(name string) *v1alpha2.DatadogPodAutoscalerClusterProfile {
	e.T.Helper()
	u, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(e.T, err)
	p := &v1alpha2.DatadogPodAutoscalerClusterProfile{}
	require.NoError(e.T, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, p))
	return p
}

func (e *env) waitProfile(name string, check func(*v1alpha2.DatadogPodAutoscalerClusterProfile) bool) *v1alpha2.DatadogPodAutoscalerClusterProfile {
	e.T.Helper()
	var p *v1alpha2.DatadogPodAutoscalerClusterProfile
	ok := assert.Eventually(e.T, func() bool { p = e.profile(name); return check(p) }, waitFor, 100*time.Millisecond)
	if !ok {
		require.FailNow(e.T, "profile "+name+" never as expected", "status: %+v", p.Status)
	}
	return p
}

func (e *env) patch(kind, ns, name, patch string) {
	e.T.Helper()
	ctx := context.Background()
	var err error
	switch kind {
	case "Deployment":
		_, err = e.Kube.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	case "Namespace":
		_, err = e.Kube.CoreV1().Namespaces().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	case "Profile":
		_, err = e.Dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	}
	require.NoError(e.T, err)
}

func utilizationOf(dpa *v1alpha2.DatadogPodAutoscaler) int32 {
	if len(dpa.Spec.Objectives) == 0 || dpa.Spec.Objectives[0].PodResource == nil || dpa.Spec.Objectives[0].PodResource.Value.Utilization == nil {
		return 0
	}
	return *dpa.Spec.Objectives[0].PodResource.Value.Utilization
}

// Cluster profiles: a labelled Deployment opens the gate and gets its DPA; a labelled
// namespace covers its workloads, "excluded" opts out and a workload's own label wins;
// editing the profile updates the DPAs; removing the label deletes the generated DPA; the
// profile's status counts them; an invalid template is reported.
func TestClusterProfiles(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	a := e.startAgent(nil)
	e.waitTriggerWatches(a)
	e.CreateProfile("standard") // memory at 80 %
	e.CreateProfile("other")
	e.Namespace("shop", nil)
	// A profile alone opens nothing.
	require.Never(t, a.gate.IsOpen, 500*time.Millisecond, 50*time.Millisecond)

	_, err := e.Kube.AppsV1().Deployments("shop").Create(ctx, testenv.Deployment("shop", "web", map[string]string{v1alpha2.ProfileLabel: "standard"}), metav1.CreateOptions{})
	require.NoError(t, err)
	a.waitGate()
	assert.Equal(t, "Deployment", a.statusDoc().Gate.Trigger.Kind)
	web := e.waitDPA("shop", generatedName("Deployment", "shop", "web"), nil)
	assert.Equal(t, "standard", web.Labels[v1alpha2.GeneratedFromProfileLabel])
	assert.Equal(t, v1alpha2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}, web.Spec.TargetRef)
	assert.Equal(t, int32(80), utilizationOf(web))
	require.Len(t, web.OwnerReferences, 1)
	assert.Equal(t, "Deployment", web.OwnerReferences[0].Kind)
	assert.Equal(t, "web", web.OwnerReferences[0].Name)

	// A labelled namespace: its workloads are covered, except the excluded one; a workload's
	// own label wins.
	e.Namespace("team", map[string]string{v1alpha2.ProfileLabel: "standard"})
	for name, labels := range map[string]map[string]string{
		"plain":    nil,
		"opted":    {v1alpha2.ProfileLabel: v1alpha2.ProfileExcluded},
		"override": {v1alpha2.ProfileLabel: "other"},
	} {
		_, err := e.Kube.AppsV1().Deployments("team").Create(ctx, testenv.Deployment("team", name, labels), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err = e.Kube.AppsV1().StatefulSets("team").Create(ctx, testenv.StatefulSet("team", "db", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	e.waitDPA("team", generatedName("Deployment", "team", "plain"), nil)
	db := e.waitDPA("team", generatedName("StatefulSet", "team", "db"), nil)
	assert.Equal(t, "StatefulSet", db.Spec.TargetRef.Kind)
	override := e.waitDPA("team", generatedName("Deployment", "team", "override"), nil)
	assert.Equal(t, "other", override.Labels[v1alpha2.GeneratedFromProfileLabel])
	// The generated DPAs are reconciled like any other (Active: their targets exist).
	e.waitCondition("team", db.Name, v1alpha2.ConditionActive, metav1.ConditionTrue)

	prof := e.waitProfile("standard", func(p *v1alpha2.DatadogPodAutoscalerClusterProfile) bool {
		return p.Status.ControlledAutoscalers == 3 && p.Status.TemplateHash != ""
	})
	valid := meta.FindStatusCondition(prof.Status.Conditions, v1alpha2.ConditionValid)
	require.NotNil(t, valid)
	assert.Equal(t, metav1.ConditionTrue, valid.Status)
	hash := prof.Status.TemplateHash
	assert.Equal(t, hash, web.Annotations[v1alpha2.ProfileTemplateHashAnnotation])
	assert.Nil(t, e.lookupDPA("team", generatedName("Deployment", "team", "opted")), "excluded opts out")
	assert.Equal(t, "running", a.statusDoc().Autoscaling.Profiles.State, "/status autoscaling.profiles")

	// Editing the profile updates every DPA generated from it.
	e.patch("Profile", "", "standard", `{"spec":{"template":{"objectives":[{"type":"PodResource","podResource":{"name":"memory","value":{"type":"Utilization","utilization":60}}}]}}}`)
	for _, ref := range [][2]string{{"shop", generatedName("Deployment", "shop", "web")}, {"team", generatedName("Deployment", "team", "plain")}, {"team", db.Name}} {
		e.waitDPA(ref[0], ref[1], func(d *v1alpha2.DatadogPodAutoscaler) bool { return utilizationOf(d) == 60 })
	}
	prof = e.waitProfile("standard", func(p *v1alpha2.DatadogPodAutoscalerClusterProfile) bool { return p.Status.TemplateHash != hash })
	assert.Equal(t, prof.Status.TemplateHash, e.lookupDPA("shop", web.Name).Annotations[v1alpha2.ProfileTemplateHashAnnotation])
	assert.Equal(t, int32(80), utilizationOf(e.lookupDPA("team", override.Name)), "another profile's DPAs are untouched")

	// Removing the label deletes the generated DPA; so does opting out in a labelled namespace.
	e.patch("Deployment", "shop", "web", `{"metadata":{"labels":{"`+v1alpha2.ProfileLabel+`":null}}}`)
	e.waitNoDPA("shop", web.Name)
	e.patch("Deployment", "team", "plain", `{"metadata":{"labels":{"`+v1alpha2.ProfileLabel+`":"excluded"}}}`)
	e.waitNoDPA("team", generatedName("Deployment", "team", "plain"))
	e.waitProfile("standard", func(p *v1alpha2.DatadogPodAutoscalerClusterProfile) bool { return p.Status.ControlledAutoscalers == 1 })

	// Deleting a workload deletes its DPA (no garbage collector runs here: lazyscale does it);
	// deleting a profile deletes the DPAs generated from it.
	require.NoError(t, e.Kube.AppsV1().StatefulSets("team").Delete(ctx, "db", metav1.DeleteOptions{}))
	e.waitNoDPA("team", db.Name)
	require.NoError(t, e.Dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource).Delete(ctx, "other", metav1.DeleteOptions{}))
	e.waitNoDPA("team", override.Name)

	// A DPA made by hand for a covered workload wins: nothing is generated for it.
	e.dpa("team", "by-hand", "manual", nil, nil)
	_, err = e.Kube.AppsV1().Deployments("team").Create(ctx, testenv.Deployment("team", "manual", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = e.Kube.AppsV1().Deployments("team").Create(ctx, testenv.Deployment("team", "covered", nil), metav1.CreateOptions{})
	require.NoError(t, err)
	e.waitDPA("team", generatedName("Deployment", "team", "covered"), nil)
	e.waitNoDPA("team", generatedName("Deployment", "team", "manual"))
	require.Never(t, func() bool { return e.lookupDPA("team", generatedName("Deployment", "team", "manual")) != nil },
		time.Second, 100*time.Millisecond, "a DPA was generated for a workload that has one made by hand")

	// An invalid template is reported and generates nothing.
	broken := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "datadoghq.com/v1alpha2", "kind": "DatadogPodAutoscalerClusterProfile",
		"metadata": map[string]any{"name": "broken"},
		"spec": map[string]any{"template": map[string]any{
			"objectives": []any{map[string]any{"type": "PodResource", "podResource": map[string]any{"name": "cpu", "value": map[string]any{"type": "Utilization", "utilization": int64(70)}}}},
			"constraints": map[string]any{"containers": []any{map[string]any{"name": "*",
				"minAllowed": map[string]any{"cpu": "2"}, "maxAllowed": map[string]any{"cpu": "1"}}}},
		}},
	}}
	_, err = e.Dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource).Create(ctx, broken, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = e.Kube.AppsV1().Deployments("shop").Create(ctx, testenv.Deployment("shop", "api", map[string]string{v1alpha2.ProfileLabel: "broken"}), metav1.CreateOptions{})
	require.NoError(t, err)
	bad := e.waitProfile("broken", func(p *v1alpha2.DatadogPodAutoscalerClusterProfile) bool {
		c := meta.FindStatusCondition(p.Status.Conditions, v1alpha2.ConditionValid)
		return c != nil && c.Status == metav1.ConditionFalse
	})
	assert.Contains(t, meta.FindStatusCondition(bad.Status.Conditions, v1alpha2.ConditionValid).Message, "minAllowed")
	assert.Nil(t, e.lookupDPA("shop", generatedName("Deployment", "shop", "api")))
}

// What a user of a cluster profile sees: a namespace labelled for the profile, a Deployment
// running in it; the profile generates its DPA, the local recommender sizes it from the usage
// metrics-server reports, and the Deployment's pods end up running with the recommendation.
func TestProfileResizesALabelledNamespace(t *testing.T) {
	e := newClusterEnv(t)
	e.CreateProfile("standard") // memory at 80 %
	ns := e.Namespace("team", map[string]string{v1alpha2.ProfileLabel: "standard"})
	e.runningDeployment(ns, "web", 2)
	e.SetUsage(ns, "web", "50m", "200Mi")
	e.startAgent(fastResync)
	name := generatedName("Deployment", ns, "web")
	e.waitDPA(ns, name, nil)

	require.Eventually(t, func() bool {
		v := e.getDPA(ns, name).Status.Vertical
		if v == nil || v.Target == nil || v.Target.Source != v1alpha2.DatadogPodAutoscalerLocalValueSource {
			return false
		}
		var app *v1alpha2.DatadogPodAutoscalerContainerResources
		for i := range v.Target.DesiredResources {
			if v.Target.DesiredResources[i].Name == "app" {
				app = &v.Target.DesiredResources[i]
			}
		}
		if app == nil {
			return false
		}
		want := v.Target.Version + " " + app.Requests.Memory().String()
		pods := e.RunningPods(ns, "web")
		for _, p := range pods {
			if got := p.Annotations[v1alpha2.RecommendationIDAnnotation] + " " + p.Spec.Containers[0].Resources.Requests.Memory().String(); got != want {
				return false
			}
		}
		return len(pods) >= 2
	}, waitFor, 250*time.Millisecond, "the pods never ran with the profile's recommendation: %v\npods: %v", dpaState{e, ns, name}, podsState{e, ns, "web"})
	assert.Equal(t, "standard", e.getDPA(ns, name).Labels[v1alpha2.GeneratedFromProfileLabel], "generated by the profile")
}

// A profile whose template turns the horizontal fallback off generates exactly that: the false
// is neither dropped nor turned into the CRD's default true, and the generated DPA is not
// rewritten on every pass.
func TestProfileKeepsAFalseFallback(t *testing.T) {
	e := newClusterEnv(t)
	ctx := context.Background()
	e.CreateProfileWith("nofallback", map[string]any{"fallback": map[string]any{"horizontal": map[string]any{"enabled": false}}})
	ns := e.Namespace("shop", nil)
	_, err := e.Kube.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment(ns, "web", map[string]string{v1alpha2.ProfileLabel: "nofallback"}), metav1.CreateOptions{})
	require.NoError(t, err)
	e.startAgent(fastResync)

	name := generatedName("Deployment", ns, "web")
	dpa := e.waitDPA(ns, name, nil)
	u, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	require.NoError(t, err)
	enabled, found, _ := unstructured.NestedBool(u.Object, "spec", "fallback", "horizontal", "enabled")
	require.True(t, found, "spec.fallback.horizontal.enabled is written")
	assert.False(t, enabled)
	assert.Empty(t, dpa.Spec.Objectives, "no objectives in the template: none in the DPA (the default applies)")
	// Several passes (every 2 s) later, the generated spec is unchanged.
	generation := dpa.Generation
	assert.Never(t, func() bool { return e.lookupDPA(ns, name).Generation != generation }, 5*time.Second, 250*time.Millisecond,
		"the generated DPA is rewritten on every pass")
}

// Generated DPAs are named and marked as the Datadog Cluster Agent marks them (the profile
// label, the profile-hash annotation); the profile's preview annotation is forwarded. A DPA
// an older lazyscale generated (another name, the generated-from-profile label) is replaced
// by one under the Cluster Agent's name: one generated DPA per workload.
func TestProfileGeneratedDPAsAsTheClusterAgentWritesThem(t *testing.T) {
	e := newClusterEnv(t)
	ctx := context.Background()
	ns := e.Namespace("shop", nil)
	prof := fmt.Sprintf("compat-%s", ns)
	e.CreateProfile(prof)
	e.patch("Profile", "", prof, `{"metadata":{"annotations":{"autoscaling.datadoghq.com/preview":"{\"burstable\":true}"}}}`)
	e.runningDeployment(ns, "web", 1)
	// What an older lazyscale generated for web.
	old := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "datadoghq.com/v1alpha2", "kind": "DatadogPodAutoscaler",
		"metadata": map[string]any{"name": "web-0123abcd", "namespace": ns,
			"labels":      map[string]any{v1alpha2.LegacyGeneratedFromProfileLabel: prof},
			"annotations": map[string]any{v1alpha2.LegacyProfileTemplateHashAnnotation: "0011223344556677"}},
		"spec": map[string]any{"targetRef": map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}},
	}}
	_, err := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Create(ctx, old, metav1.CreateOptions{})
	require.NoError(t, err)
	e.patch("Deployment", ns, "web", `{"metadata":{"labels":{"autoscaling.datadoghq.com/profile":"`+prof+`"}}}`)
	e.startAgent(nil)

	name := generatedName("Deployment", ns, "web")
	dpa := e.waitDPA(ns, name, nil)
	assert.Equal(t, prof, dpa.Labels[v1alpha2.ProfileLabel], "the profile label marks it generated")
	p := e.waitProfile(prof, func(p *v1alpha2.DatadogPodAutoscalerClusterProfile) bool { return p.Status.TemplateHash != "" })
	assert.Equal(t, p.Status.TemplateHash, dpa.Annotations["autoscaling.datadoghq.com/profile-hash"])
	assert.Equal(t, `{"burstable":true}`, dpa.Annotations["autoscaling.datadoghq.com/preview"], "the preview annotation is forwarded")
	e.waitNoDPA(ns, "web-0123abcd")
	e.waitCondition(ns, name, v1alpha2.ConditionActive, metav1.ConditionTrue)
	e.waitProfile(prof, func(p *v1alpha2.DatadogPodAutoscalerClusterProfile) bool { return p.Status.ControlledAutoscalers == 1 })
}

// The Cluster Agent's built-in profiles, by name: nothing is created while no workload names
// one; a Deployment labelled datadog-optimize-balance gets its DPA from that profile, which
// lazyscale created (with the others, labelled managed-by=datadog); an edit of a built-in
// profile is reset.
func TestBuiltinProfiles(t *testing.T) {
	e := newClusterEnv(t)
	ctx := context.Background()
	profileClient := e.Dyn.Resource(v1alpha2.DatadogPodAutoscalerClusterProfilesResource)
	t.Cleanup(func() { // after the agent stops
		for _, name := range profiles.BuiltinNames() {
			_ = profileClient.Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
	ns := e.Namespace("shop", nil)
	e.runningDeployment(ns, "api", 1)
	e.startAgent(nil)
	e.dpa(ns, "api", "api", nil, nil) // opens the gate: no built-in profile is used yet
	e.waitCondition(ns, "api", v1alpha2.ConditionActive, metav1.ConditionTrue)
	builtins := metav1.ListOptions{LabelSelector: "autoscaling.datadoghq.com/managed-by=datadog"}
	list, err := profileClient.List(ctx, builtins)
	require.NoError(t, err)
	assert.Empty(t, list.Items, "no built-in profile while none is used")

	_, err = e.Kube.AppsV1().Deployments(ns).Create(ctx, testenv.Deployment(ns, "web", map[string]string{v1alpha2.ProfileLabel: "datadog-optimize-balance"}), metav1.CreateOptions{})
	require.NoError(t, err)
	dpa := e.waitDPA(ns, generatedName("Deployment", ns, "web"), nil)
	assert.Equal(t, "datadog-optimize-balance", dpa.Labels[v1alpha2.ProfileLabel])
	require.NotNil(t, dpa.Spec.Constraints)
	assert.Equal(t, int32(2), *dpa.Spec.Constraints.MinReplicas)
	assert.Equal(t, int32(70), utilizationOf(dpa))
	assert.Equal(t, int32(600), dpa.Spec.ApplyPolicy.ScaleDown.StabilizationWindowSeconds)
	list, err = profileClient.List(ctx, builtins)
	require.NoError(t, err)
	assert.Len(t, list.Items, 4, "the four built-in profiles")

	// An edit is reset, and the generated DPA follows the definition again.
	e.patch("Profile", "", "datadog-optimize-balance", `{"spec":{"template":{"constraints":{"minReplicas":5}}}}`)
	e.waitProfile("datadog-optimize-balance", func(p *v1alpha2.DatadogPodAutoscalerClusterProfile) bool {
		c := p.Spec.Template.Constraints
		return c != nil && c.MinReplicas != nil && *c.MinReplicas == 2
	})
	e.waitDPA(ns, generatedName("Deployment", ns, "web"), func(d *v1alpha2.DatadogPodAutoscaler) bool {
		return d.Spec.Constraints != nil && d.Spec.Constraints.MinReplicas != nil && *d.Spec.Constraints.MinReplicas == 2
	})
}
