package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// fastElection makes takeovers quick enough for a test; the bounds are client-go's.
func fastElection(identity string, extra map[string]string) map[string]string {
	o := map[string]string{
		"leader_election.identity":       identity,
		"leader_election.lease_duration": "4s",
		"leader_election.renew_deadline": "3s",
		"leader_election.retry_period":   "500ms",
	}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

func (a *agent) waitLeader() {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	_, ok := a.leader.WaitForLeadership(ctx)
	require.True(a.t, ok, "never became leader")
}

func (e *env) leaseHolder() string {
	l, err := e.Kube.CoordinationV1().Leases("lazyscale").Get(context.Background(), "lazyscale-leader", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// review posts an AdmissionReview for a new pod of deploy to the agent's autoscaling webhook
// over TLS, trusting only caBundle, and returns the response.
func (a *agent) review(caBundle []byte, ns, deploy string) *admissionv1.AdmissionResponse {
	a.t.Helper()
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: deploy + "-7c9d8f6b5-abcde", Namespace: ns, Labels: podLabels(deploy), Annotations: map[string]string{"a": "b"}, OwnerReferences: []metav1.OwnerReference{ownerRef(deploy)}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
	raw, err := json.Marshal(pod)
	require.NoError(a.t, err)
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "0b1c2d3e", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: ns, Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: raw}},
	})
	require.NoError(a.t, err)
	roots := x509.NewCertPool()
	require.True(a.t, roots.AppendCertsFromPEM(caBundle))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	resp, err := client.Post("https://127.0.0.1:"+strconv.Itoa(a.port)+"/autoscaling", "application/json", bytes.NewReader(body))
	require.NoError(a.t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	require.Equal(a.t, http.StatusOK, resp.StatusCode, string(out))
	var r admissionv1.AdmissionReview
	require.NoError(a.t, json.Unmarshal(out, &r))
	require.NotNil(a.t, r.Response)
	return r.Response
}

// Two agents against one apiserver: one leads and writes (the certificate Secret, the webhook
// configuration); the follower writes nothing, serves the leader's certificate and patches
// the same way; when the leader stops, the follower takes over within the lease duration and
// keeps the same CA.
func TestTwoAgentsOneLeader(t *testing.T) {
	e := newClusterEnv(t)
	a := e.startAgent(fastElection("agent-a", map[string]string{"admission.register": "always", "admission.scope": "cluster"}))
	a.waitLeader()
	require.Eventually(t, func() bool { return e.autoscalingEntry() != nil }, waitFor, 50*time.Millisecond, "leader never registered")
	caBundle := e.autoscalingEntry().ClientConfig.CABundle
	secret, err := e.Kube.CoreV1().Secrets("lazyscale").Get(context.Background(), "lazyscale-webhook-cert", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, caBundle, secret.Data["ca.crt"], "the registered CA is the Secret's")

	ns := e.Namespace("shop", nil)
	secretVersion := secret.ResourceVersion

	b := e.startAgent(fastElection("agent-b", map[string]string{"admission.register": "always", "admission.scope": "cluster"}))
	require.Eventually(t, func() bool { return e.leaseHolder() == "agent-a" && b.leader.Status().Holder == "agent-a" }, waitFor, 50*time.Millisecond)
	assert.True(t, a.leader.IsLeader())
	assert.False(t, b.leader.IsLeader())
	assert.Equal(t, "1", a.metric("lazyscale_leader_election_is_leader"))
	assert.Equal(t, "0", b.metric("lazyscale_leader_election_is_leader"))
	require.Eventually(t, func() bool { return bytes.Equal(b.admission.CABundle(), caBundle) }, waitFor, 50*time.Millisecond, "the follower never loaded the leader's certificate")

	// Both gates open on the DPA; the leader alone reconciles it and rolls its Deployment out
	// once; both webhooks patch the same pod the same way, over TLS trusting only the
	// registered CA (so the follower serves a certificate from the Secret).
	e.runningDeployment(ns, "cart", 1)
	e.dpa(ns, "cart", "cart", map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]`}, rolloutOnly)
	for _, x := range []*agent{a, b} {
		require.Eventually(t, x.webhook.PatcherInstalled, waitFor, 50*time.Millisecond)
	}
	require.Eventually(t, func() bool { return len(e.events(ns, "cart", "SuccessfulTriggerRollout")) == 1 }, waitFor, 100*time.Millisecond)
	version := e.getDPA(ns, "cart").Status.Vertical.Target.Version
	var fromLeader, fromFollower *admissionv1.AdmissionResponse
	require.Eventually(t, func() bool {
		fromLeader, fromFollower = a.review(caBundle, ns, "cart"), b.review(caBundle, ns, "cart")
		return strings.Contains(string(fromFollower.Patch), version) // the follower's view has the leader's status
	}, waitFor, 100*time.Millisecond)
	assert.True(t, fromFollower.Allowed)
	assert.Contains(t, string(fromLeader.Patch), `"value":"`+ns+`/cart"`)
	assert.Contains(t, string(fromLeader.Patch), `{"cpu":"300m"}`)
	assert.Equal(t, string(fromLeader.Patch), string(fromFollower.Patch))

	// The follower patched without a single pod: only the leader, whose controller reads
	// them, collects pods.
	assert.Equal(t, 0, b.wm.Count(wmdef.KindPod), "the follower holds no pods")
	assert.Equal(t, wmdef.StateStandby, b.statusDoc().PodCollection.State)
	assert.Positive(t, a.wm.Count(wmdef.KindPod), "the leader holds the DPA's namespace's pods")

	// The follower wrote nothing: the Secret is untouched, and it does not report a
	// registration of its own.
	secret, err = e.Kube.CoreV1().Secrets("lazyscale").Get(context.Background(), "lazyscale-webhook-cert", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, secretVersion, secret.ResourceVersion)
	require.NotNil(t, b.statusDoc().Webhook)
	assert.False(t, b.statusDoc().Webhook.Registered["autoscaling"])

	// The leader stops (releasing its lease): the follower takes over within the lease
	// duration, registers itself, and keeps the same CA.
	stopped := time.Now()
	a.stop()
	b.waitLeader()
	took := time.Since(stopped)
	assert.Less(t, took, 4*time.Second, "takeover slower than the lease duration")
	t.Logf("takeover after the leader stopped: %s", took.Round(time.Millisecond))
	require.Eventually(t, func() bool {
		entry := e.autoscalingEntry()
		return entry != nil && entry.ClientConfig.URL != nil && *entry.ClientConfig.URL == "https://"+b.admission.Addr()+"/autoscaling"
	}, waitFor, 50*time.Millisecond, "the new leader never registered itself")
	assert.Equal(t, caBundle, e.autoscalingEntry().ClientConfig.CABundle, "same CA after the takeover")
	// The new leader collects its scope: the pods of the DPA's namespace.
	require.Eventually(t, func() bool {
		return slices.Equal(b.heldPods(), e.apiserverPods([]string{ns})) && b.wm.Synced(wmdef.KindPod, ns)
	}, waitFor, 50*time.Millisecond, "the new leader never collected the pods of %s", ns)
	assert.Equal(t, "agent-b", e.leaseHolder())

	// No double rollout: the new leader reconciles the DPA (its status is its own now) and
	// finds the rollout already done, within the rollout interval.
	e.waitCondition(ns, "cart", v1alpha2.ConditionVerticalAbleToApply, metav1.ConditionTrue)
	assert.Never(t, func() bool { return len(e.events(ns, "cart", "SuccessfulTriggerRollout")) > 1 }, quietWindow, 200*time.Millisecond, "the new leader rolled out again")
	assert.Len(t, e.LazyscaleRequests("deployments", "patch"), 1, "one rollout in all")
}

// A dormant replica has nothing to write once the certificate is in its Secret: it never
// touches the Lease until the gate opens and its webhook entry is wanted.
func TestDormantReplicaStandsForNoElection(t *testing.T) {
	e := newEnv(t, true)
	first := e.startAgent(fastElection("agent-a", nil))
	require.Eventually(t, func() bool {
		_, err := e.Kube.CoreV1().Secrets("lazyscale").Get(context.Background(), "lazyscale-webhook-cert", metav1.GetOptions{})
		return err == nil
	}, waitFor, 50*time.Millisecond, "the first replica never wrote the certificate")
	first.stop()
	before := len(e.LazyscaleRequests("leases"))

	a := e.startAgent(fastElection("agent-b", nil))
	e.waitTriggerWatches(a)
	assert.Never(t, func() bool { return len(e.LazyscaleRequests("leases")) > before }, quietWindow, 100*time.Millisecond,
		"a dormant replica with its certificate in the Secret campaigned")
	assert.False(t, a.leader.Status().Campaigning)

	e.Namespace("shop", nil)
	e.deployment("shop", "cart")
	e.CreateDPA("shop", "cart", "cart")
	a.waitLeader()
	require.Eventually(t, func() bool { return e.autoscalingEntry() != nil }, waitFor, 50*time.Millisecond)
}
