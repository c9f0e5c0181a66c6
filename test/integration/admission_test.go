package integration

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	autoscalingimpl "github.com/lazyscale/lazyscale/comp/admission/autoscaling/impl"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
	"github.com/lazyscale/lazyscale/test/testenv"
)

const entryName = "autoscaling.lazyscale.datadoghq.com"

// autoscalingEntry returns lazyscale's autoscaling entry of the webhook configuration, or nil.
func (e *env) autoscalingEntry() *admissionregistrationv1.MutatingWebhook {
	cfg, err := e.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), "lazyscale-webhook", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(e.T, err)
	for i := range cfg.Webhooks {
		if cfg.Webhooks[i].Name == entryName {
			return &cfg.Webhooks[i]
		}
	}
	return nil
}

// webhookCalls is how many reviews the autoscaling handler answered, from /metrics.
func (a *agent) webhookCalls() int {
	_, body := a.get("/metrics")
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, `lazyscale_admission_webhook_requests_total{`) && strings.Contains(line, `webhook="autoscaling"`) {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			n += int(v)
		}
	}
	return n
}

// webhookResults is the count of the autoscaling webhook's answers with one outcome.
func (a *agent) webhookResults(outcome string) string {
	result := "success"
	if outcome == "error" || outcome == "bad_request" {
		result = "error"
	}
	return a.metric(fmt.Sprintf(`lazyscale_admission_webhook_requests_total{outcome=%q,result=%q,webhook="autoscaling"}`, outcome, result))
}

func (e *env) podAnnotation(ns, name string) string {
	p, err := e.Kube.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(e.T, err)
	return p.Annotations[v1alpha2.AutoscalerIDAnnotation]
}

func ownerRef(deploy string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: deploy + "-7c9d8f6b5", UID: "rs-" + "x", Controller: testenv.Ptr(true)}
}

func podLabels(deploy string) map[string]string {
	return map[string]string{"app": deploy, "pod-template-hash": "7c9d8f6b5"}
}

func TestLazyRegistration(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	a := e.startAgent(nil)
	e.waitTriggerWatches(a)

	// Dormant: no autoscaling entry, and pods never reach the handler.
	assert.Nil(t, e.autoscalingEntry())
	e.CreatePods("shop", "cart", 5)
	assert.Never(t, func() bool { return a.webhookCalls() > 0 || e.autoscalingEntry() != nil }, quietWindow, 100*time.Millisecond)

	e.deployment("shop", "cart")
	e.CreateDPA("shop", "cart", "cart")
	require.Eventually(t, func() bool { return e.autoscalingEntry() != nil }, waitFor, 50*time.Millisecond, "entry never registered")
	entry := e.autoscalingEntry()
	assert.Equal(t, a.admission.CABundle(), entry.ClientConfig.CABundle)
	assert.Contains(t, string(entry.ClientConfig.CABundle), "BEGIN CERTIFICATE")
	require.NotNil(t, entry.ClientConfig.URL)
	assert.Equal(t, "https://"+a.admission.Addr()+"/autoscaling", *entry.ClientConfig.URL)
	assert.Equal(t, admissionregistrationv1.Ignore, *entry.FailurePolicy)
	assert.Equal(t, int32(5), *entry.TimeoutSeconds)
	assert.Equal(t, admissionregistrationv1.IfNeededReinvocationPolicy, *entry.ReinvocationPolicy)
	assert.Equal(t, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, entry.Rules[0].Operations)
	require.Eventually(t, a.webhook.PatcherInstalled, waitFor, 50*time.Millisecond)

	// A pod of the DPA's target gets the annotation, through the real apiserver and TLS. The
	// apiserver picks up a new webhook configuration asynchronously, so retry with new pods.
	i := 0
	require.Eventually(t, func() bool {
		i++
		p, err := e.CreatePod("shop", fmt.Sprintf("cart-7c9d8f6b5-w%03d", i), podLabels("cart"), ownerRef("cart"))
		require.NoError(t, err)
		return p.Annotations[v1alpha2.AutoscalerIDAnnotation] == "shop/cart"
	}, waitFor, 200*time.Millisecond, "pod never annotated")
	assert.Equal(t, "shop/cart", e.podAnnotation("shop", fmt.Sprintf("cart-7c9d8f6b5-w%03d", i)), "read back from the apiserver")

	// A pod of another workload is admitted unchanged.
	other, err := e.CreatePod("shop", "web-7c9d8f6b5-x", podLabels("web"), ownerRef("web"))
	require.NoError(t, err)
	assert.Empty(t, other.Annotations[v1alpha2.AutoscalerIDAnnotation])

	wh := a.statusDoc().Webhook
	require.NotNil(t, wh)
	assert.True(t, wh.PatcherInstalled)
	assert.True(t, wh.Registered["autoscaling"])
	require.NotNil(t, wh.Certificate)
	assert.False(t, wh.Certificate.NotAfter.IsZero())
	assert.NotContains(t, []string{"", "0"}, a.webhookResults("patched"), "counted as patched")

	// The process stops: the autoscaling stack stops before the admission server has drained,
	// and the patcher stays installed, so that a review still being answered patches its pod
	// (one answered "skipped" during a leader's SIGTERM once admitted a pod unpatched).
	a.stop()
	assert.True(t, a.webhook.PatcherInstalled(), "the patcher left the webhook when the process stopped")
}

func TestAlwaysRegisteredWithGateClosed(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	a := e.startAgent(map[string]string{"admission.register": "always", "admission.scope": "cluster"})
	require.Eventually(t, func() bool { return e.autoscalingEntry() != nil }, waitFor, 50*time.Millisecond)
	require.False(t, a.gate.IsOpen())

	var created *corev1.Pod
	i := 0
	require.Eventually(t, func() bool {
		i++
		p, err := e.CreatePod("shop", fmt.Sprintf("cart-7c9d8f6b5-%03d", i), podLabels("cart"), ownerRef("cart"))
		require.NoError(t, err)
		created = p
		return a.webhookCalls() > 0
	}, waitFor, 200*time.Millisecond, "the apiserver never called the webhook")
	assert.NotContains(t, []string{"", "0"}, a.webhookResults("skipped"), "answered on the fast path")
	assert.Empty(t, created.Annotations[v1alpha2.AutoscalerIDAnnotation], "stored unchanged")
	assert.Equal(t, map[string]string{"example.com/unrelated": "dropped", v1alpha2.RecommendationIDAnnotation: "r1"}, created.Annotations)
	assert.False(t, a.webhook.PatcherInstalled())
}

func TestAgentStoppedWhileRegistered(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	a := e.startAgent(map[string]string{"admission.register": "always", "admission.scope": "cluster"})
	require.Eventually(t, func() bool { return e.autoscalingEntry() != nil }, waitFor, 50*time.Millisecond)
	a.stop()

	require.NotNil(t, e.autoscalingEntry(), "the configuration is left in place")
	for i := range 5 {
		_, err := e.CreatePod("shop", fmt.Sprintf("cart-7c9d8f6b5-%03d", i), podLabels("cart"), ownerRef("cart"))
		require.NoError(t, err, "failurePolicy Ignore: pods are created while lazyscale is away")
	}
}

func TestCertificateRotationUnderLoad(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	e.deployment("shop", "cart")
	e.CreateDPA("shop", "cart", "cart")
	a := e.startAgent(map[string]string{"admission.register": "always", "admission.scope": "cluster", "admission.certificate.validity": "12s"})
	a.waitState(wmdef.StateSynced)
	require.Eventually(t, a.webhook.PatcherInstalled, waitFor, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		p, err := e.CreatePod("shop", fmt.Sprintf("cart-7c9d8f6b5-warm%d", time.Now().UnixNano()), podLabels("cart"), ownerRef("cart"))
		require.NoError(t, err)
		return p.Annotations[v1alpha2.AutoscalerIDAnnotation] == "shop/cart"
	}, waitFor, 200*time.Millisecond)

	// Keep creating pods while the 12 s certificate is renewed (every ~8 s): every pod must be
	// patched, which means no call failed (with failurePolicy Ignore a failed call would admit
	// the pod unpatched).
	seen := map[time.Time]bool{a.admission.CertificateNotAfter(): true}
	deadline := time.Now().Add(25 * time.Second)
	for i := 0; time.Now().Before(deadline) && i < 2000; i++ {
		p, err := e.CreatePod("shop", fmt.Sprintf("cart-7c9d8f6b5-r%04d", i), podLabels("cart"), ownerRef("cart"))
		require.NoError(t, err)
		require.Equal(t, "shop/cart", p.Annotations[v1alpha2.AutoscalerIDAnnotation], "pod %d not patched: a webhook call failed", i)
		seen[a.admission.CertificateNotAfter()] = true
		time.Sleep(50 * time.Millisecond) // pacing the load, not synchronisation
	}
	assert.GreaterOrEqual(t, len(seen), 3, "the certificate was renewed at least twice")
	assert.Equal(t, "0", a.webhookResults("error"))
}

// files mode: the certificate comes from a directory (a cert-manager Secret volume, say); a new
// CA and certificate written there are picked up without a restart and the new CA bundle is
// registered.
func TestFilesCertificateMode(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	dir := t.TempDir()
	firstCA := testenv.WriteServingCert(t, dir)
	a := e.startAgent(map[string]string{"admission.register": "always", "admission.scope": "cluster", "admission.certificate.mode": "files", "admission.certificate.dir": dir})
	require.Eventually(t, func() bool { return e.autoscalingEntry() != nil }, waitFor, 50*time.Millisecond)
	assert.Equal(t, firstCA, e.autoscalingEntry().ClientConfig.CABundle)

	called := func() bool {
		before := a.webhookCalls()
		_, err := e.CreatePod("shop", fmt.Sprintf("cart-7c9d8f6b5-f%d", time.Now().UnixNano()), podLabels("cart"), ownerRef("cart"))
		require.NoError(t, err)
		return a.webhookCalls() > before
	}
	require.Eventually(t, called, waitFor, 200*time.Millisecond, "the apiserver never reached the webhook with the first certificate")

	secondCA := testenv.WriteServingCert(t, dir)
	require.NotEqual(t, firstCA, secondCA)
	require.Eventually(t, func() bool { return bytes.Equal(e.autoscalingEntry().ClientConfig.CABundle, secondCA) },
		waitFor, 200*time.Millisecond, "the new CA bundle was never registered")
	require.Eventually(t, called, waitFor, 200*time.Millisecond, "the apiserver never reached the webhook with the new certificate")
}

// never: lazyscale leaves the configuration to someone else (a chart) and only serves.
func TestNeverRegisters(t *testing.T) {
	e := newEnv(t, true)
	e.Namespace("shop", nil)
	e.deployment("shop", "cart")
	e.CreateDPA("shop", "cart", "cart")
	a := e.startAgent(map[string]string{"admission.register": "never"})
	a.waitState(wmdef.StateSynced)
	require.Eventually(t, a.webhook.PatcherInstalled, waitFor, 50*time.Millisecond)
	assert.Never(t, func() bool { return e.autoscalingEntry() != nil }, quietWindow, 100*time.Millisecond)

	// A chart registers it; lazyscale serves.
	url := "https://" + a.admission.Addr() + "/autoscaling"
	fail, none := admissionregistrationv1.Ignore, admissionregistrationv1.SideEffectClassNone
	_, err := e.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(), &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "lazyscale-webhook"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: entryName, ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: a.admission.CABundle()},
			Rules: []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			FailurePolicy: &fail, SideEffects: &none, AdmissionReviewVersions: []string{"v1"},
		}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		p, err := e.CreatePod("shop", fmt.Sprintf("cart-7c9d8f6b5-n%d", time.Now().UnixNano()), podLabels("cart"), ownerRef("cart"))
		require.NoError(t, err)
		return p.Annotations[v1alpha2.AutoscalerIDAnnotation] == "shop/cart"
	}, waitFor, 200*time.Millisecond)
	cfg, err := e.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), "lazyscale-webhook", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), cfg.Generation, "lazyscale never touched it")
}

// scopeOf is the namespaces the autoscaling entry covers (its kubernetes.io/metadata.name In
// values), nil when there is no entry.
func (e *env) scopeOf() []string {
	entry := e.autoscalingEntry()
	if entry == nil || entry.NamespaceSelector == nil {
		return nil
	}
	for _, r := range entry.NamespaceSelector.MatchExpressions {
		if r.Key == "kubernetes.io/metadata.name" && r.Operator == metav1.LabelSelectorOpIn {
			return r.Values
		}
	}
	return []string{"(cluster-wide)"}
}

// With admission.scope namespaces the webhook's entry covers exactly the namespaces holding
// an active DPA, kept up to date by the leader: pods created anywhere else never reach
// lazyscale. A rollout starts only once its namespace is covered.
func TestWebhookScopedToAutoscaledNamespaces(t *testing.T) {
	e := newClusterEnv(t)
	ctx := context.Background()
	shop, other := e.Namespace("shop", nil), e.Namespace("other", nil)
	e.runningDeployment(shop, "web", 1)
	e.runningDeployment(other, "api", 1)
	a := e.startAgent(map[string]string{"admission.scope": "namespaces"})
	e.dpa(shop, "web", "web", map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]`}, rolloutOnly)
	require.Eventually(t, func() bool { return slices.Equal(e.scopeOf(), []string{shop}) }, waitFor, 100*time.Millisecond,
		"the entry never covered only %s: %v", shop, e.scopeOf())
	version := e.waitVerticalTarget(shop, "web").Version
	e.waitPodsRunWith(shop, "web", 1, hasResources("app", version, "300m", "128Mi", "256Mi"))

	// The rollout's patch of the Deployment came after the entry that covers shop.
	var covered, patched time.Time
	for _, r := range e.LazyscaleRequests("mutatingwebhookconfigurations", "create", "update") {
		if covered.IsZero() {
			covered = r.StageTimestamp.Time // the first entry, written: it covers shop
		}
	}
	for _, r := range e.LazyscaleRequests("deployments", "patch") {
		patched = r.RequestReceivedTimestamp.Time
	}
	require.False(t, covered.IsZero(), "the entry was written")
	require.False(t, patched.IsZero(), "the rollout happened")
	assert.False(t, patched.Before(covered), "the rollout (%s) came after the entry covered its namespace (%s)", patched, covered)

	// Pods created in a namespace without a DPA never reach the webhook.
	calls := a.webhookCalls()
	scaleTo := func(ns, name string, n int32) {
		_, err := e.Kube.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n), metav1.PatchOptions{})
		require.NoError(t, err)
		e.waitRunning(ns, name, int(n))
	}
	scaleTo(other, "api", 3)
	assert.Equal(t, calls, a.webhookCalls(), "pods of %s were sent to the webhook", other)
	scaleTo(shop, "web", 2)
	assert.Greater(t, a.webhookCalls(), calls, "pods of %s are", shop)

	// A DPA in other: the entry covers both; shop's goes: only other.
	e.dpa(other, "api", "api", nil, nil)
	require.Eventually(t, func() bool { return slices.Equal(e.scopeOf(), []string{other, shop}) }, waitFor, 100*time.Millisecond, "%v", e.scopeOf())
	require.NoError(t, e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(shop).Delete(ctx, "web", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { return slices.Equal(e.scopeOf(), []string{other}) }, waitFor, 100*time.Millisecond, "%v", e.scopeOf())
}

// conditionWorkloads returns the workloads named by the entry's match condition, sorted; nil
// when it has none.
func (e *env) conditionWorkloads() []string {
	entry := e.autoscalingEntry()
	if entry == nil {
		return nil
	}
	for _, c := range entry.MatchConditions {
		if c.Name != autoscalingimpl.MatchConditionName {
			continue
		}
		var out []string
		for _, m := range regexp.MustCompile(`"([^"]+)": true`).FindAllStringSubmatch(c.Expression, -1) {
			out = append(out, m[1])
		}
		slices.Sort(out)
		return out
	}
	return nil
}

// createOwnedPod creates a bare pod as if a controller made it: its controller owner reference
// names kind/owner (no such object exists), with the pod-template-hash label when hash is set.
// It returns the pod as admitted.
func (e *env) createOwnedPod(ns, name, kind, owner, hash string) *corev1.Pod {
	e.T.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "apps/v1", Kind: kind, Name: owner, UID: "0b7c0e4e-4d3b-4f6e-9a51-000000000000", Controller: testenv.Ptr(true)}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", Resources: *appResources.DeepCopy()}}},
	}
	if hash != "" {
		p.Labels = map[string]string{"pod-template-hash": hash}
	}
	p, err := e.Kube.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{})
	require.NoError(e.T, err)
	return p
}

// With admission.scope workloads (the default) the entry's match condition also leaves out,
// inside an autoscaled namespace, the pods of workloads nobody autoscales: the apiserver
// resolves each pod's owner as the patcher does (ReplicaSet → Deployment by the
// pod-template-hash label, StatefulSet directly) and sends only the active DPAs' targets'
// pods. What the user sees: the autoscaled Deployment's pods run patched, another
// Deployment's pods in the same namespace never reach lazyscale.
func TestWebhookScopedToAutoscaledWorkloads(t *testing.T) {
	e := newClusterEnv(t)
	ctx := context.Background()
	shop := e.Namespace("shop", nil)
	e.runningDeployment(shop, "web", 1)
	e.runningDeployment(shop, "batch", 1)
	a := e.startAgent(nil)
	e.dpa(shop, "web", "web", map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]`}, rolloutOnly)
	require.Eventually(t, func() bool { return slices.Equal(e.conditionWorkloads(), []string{shop + "/Deployment/web"}) }, waitFor, 100*time.Millisecond,
		"the entry never matched only %s/web: %v", shop, e.conditionWorkloads())
	assert.Equal(t, []string{shop}, e.scopeOf())
	version := e.waitVerticalTarget(shop, "web").Version
	e.waitPodsRunWith(shop, "web", 1, hasResources("app", version, "300m", "128Mi", "256Mi"))
	if st := a.statusDoc().Webhook; assert.NotNil(t, st) && assert.NotNil(t, st.Scope) {
		assert.True(t, st.Scope.MatchesWorkloads, "/status says the entry matches workloads")
		assert.Equal(t, 1, st.Scope.Workloads)
	}

	calls := a.webhookCalls()
	scaleTo := func(name string, n int32) {
		_, err := e.Kube.AppsV1().Deployments(shop).Patch(ctx, name, types.MergePatchType, fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n), metav1.PatchOptions{})
		require.NoError(t, err)
		e.waitRunning(shop, name, int(n))
	}
	scaleTo("batch", 3)
	assert.Equal(t, calls, a.webhookCalls(), "pods of %s/batch, in an autoscaled namespace, were sent to the webhook", shop)
	scaleTo("web", 2)
	assert.Equal(t, calls+1, a.webhookCalls(), "the new pod of %s/web is sent", shop)
	e.waitPodsRunWith(shop, "web", 2, hasResources("app", version, "300m", "128Mi", "256Mi"))

	// The condition resolves owners as the patcher: each pod below is sent (and patched) or
	// not, and the webhook's call count says which.
	for _, c := range []struct {
		name, kind, owner, hash string
		sent                    bool
	}{
		{"by-web-rs", "ReplicaSet", "web-7d9c5b", "7d9c5b", true},
		{"by-web-rs-no-hash", "ReplicaSet", "web-7d9c5b", "", false},
		{"by-web-rs-other-hash", "ReplicaSet", "web-7d9c5b", "abc", false},
		{"by-webx-rs", "ReplicaSet", "webx-7d9c5b", "7d9c5b", false},
		{"by-batch-rs", "ReplicaSet", "batch-7d9c5b", "7d9c5b", false},
		{"by-web-sts", "StatefulSet", "web", "", false},
		{"by-hash-only", "ReplicaSet", "-7d9c5b", "7d9c5b", false},
	} {
		before := a.webhookCalls()
		p := e.createOwnedPod(shop, c.name, c.kind, c.owner, c.hash)
		sent := a.webhookCalls() > before
		assert.Equal(t, c.sent, sent, "%s: sent to the webhook", c.name)
		assert.Equal(t, c.sent, p.Spec.Containers[0].Resources.Requests.Cpu().String() == "300m", "%s: patched", c.name)
	}

	// The DPA goes: no workload left, no entry.
	require.NoError(t, e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(shop).Delete(ctx, "web", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { return e.autoscalingEntry() == nil }, waitFor, 100*time.Millisecond, "the entry stayed: %v", e.conditionWorkloads())
}
