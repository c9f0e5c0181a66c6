package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// A DPA's author names its recommender, so the agent calls only allowed endpoints (by default
// in-cluster Services). A refused endpoint is the DPA's Error (RecommendationFailed) with the
// reason, and no connection is made: a listener on the refused address sees nothing.
func TestRecommenderEndpointRefused(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("refused", nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var accepted atomic.Int32
	var acceptor sync.WaitGroup
	t.Cleanup(func() { _ = l.Close(); acceptor.Wait() })
	acceptor.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	})

	cases := map[string]struct{ endpoint, why string }{
		"loopback": {"http://" + l.Addr().String() + "/recommend", "is a loopback address"},
		"metadata": {"http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"},
		"outside":  {"https://recommender.example.com/recommend", "host recommender.example.com is not in autoscaling.workload.external_recommender.allowed_endpoints (*.svc,*.svc.cluster.local)"},
	}
	for name, c := range cases {
		e.runningDeployment(ns, name, 1)
		e.dpa(ns, name, name, map[string]string{v1alpha2.CustomRecommenderAnnotation: fmt.Sprintf(`{"endpoint": %q}`, c.endpoint)}, rolloutOnly)
	}
	e.startAgent(nil) // the default allow-list

	for name, c := range cases {
		cond := e.waitCondition(ns, name, v1alpha2.ConditionError, metav1.ConditionTrue)
		assert.Equal(t, "RecommendationFailed", cond.Reason, name)
		assert.Contains(t, cond.Message, c.why, name)
		assert.Contains(t, cond.Message, "refused", name)
		rec := e.waitCondition(ns, name, v1alpha2.ConditionVerticalAbleToRecommend, metav1.ConditionFalse)
		assert.Equal(t, "RecommendationFailed", rec.Reason, name)
		// Nothing acted on: the workload keeps its template.
		d, err := e.Kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Empty(t, d.Spec.Template.Annotations[v1alpha2.RecommendationIDAnnotation], name)
	}
	assert.Zero(t, accepted.Load(), "the agent connected to a refused endpoint")

	// Fixing the DPA clears the error: an endpoint the list allows (a Service name that does
	// not resolve here) fails for a passing reason, not as a refusal.
	_, err = e.Dyn.Resource(v1alpha2.DatadogPodAutoscalersResource).Namespace(ns).Patch(context.Background(), "outside", "application/merge-patch+json",
		fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, v1alpha2.CustomRecommenderAnnotation, `{"endpoint": "http://recommender.nowhere.svc:8080/recommend"}`), metav1.PatchOptions{})
	require.NoError(t, err)
	e.waitCondition(ns, "outside", v1alpha2.ConditionError, metav1.ConditionFalse)
	require.Eventually(t, func() bool {
		c := v1alpha2.FindCondition(e.getDPA(ns, "outside").Status.Conditions, v1alpha2.ConditionVerticalAbleToRecommend)
		return c != nil && strings.Contains(c.Message, "recommender.nowhere.svc") && !strings.Contains(c.Message, "refused")
	}, waitFor, 100*time.Millisecond, "the allowed endpoint's failure is not reported: %v", dpaState{e, ns, "outside"})
}

// What one DPA costs is bounded whatever its author writes: an annotation over its size, a
// target with more containers than lazyscale autoscales and a recommender answering megabytes
// each get a condition that names the bound, and nothing is acted on.
func TestBoundedWorkPerDPA(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("bounded", nil)
	e.deployment(ns, "big-annotation")
	e.dpa(ns, "big-annotation", "big-annotation", map[string]string{
		v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]` + strings.Repeat(" ", 17<<10),
	}, rolloutOnly)

	many := testenv.Deployment(ns, "many-containers", nil)
	for i := range 300 {
		c := many.Spec.Template.Spec.Containers[0]
		c.Name = fmt.Sprintf("c%03d", i)
		many.Spec.Template.Spec.Containers = append(many.Spec.Template.Spec.Containers, c)
	}
	_, err := e.Kube.AppsV1().Deployments(ns).Create(context.Background(), many, metav1.CreateOptions{})
	require.NoError(t, err)
	e.dpa(ns, "many-containers", "many-containers", map[string]string{v1alpha2.ForceResourcesAnnotation: `[{"name": "app", "requests": {"cpu": "300m"}}]`}, rolloutOnly)

	var served atomic.Int64
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		chunk := []byte(strings.Repeat(" ", 64<<10))
		for range 1024 { // 64 MiB of whitespace before any JSON, or until the agent hangs up
			n, err := w.Write(chunk)
			served.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(huge.Close)
	e.deployment(ns, "huge-answer")
	e.dpa(ns, "huge-answer", "huge-answer", map[string]string{v1alpha2.CustomRecommenderAnnotation: fmt.Sprintf(`{"endpoint": %q}`, huge.URL)}, rolloutOnly)

	e.startAgent(allowLoopbackRecommenders)

	c := e.waitCondition(ns, "big-annotation", v1alpha2.ConditionError, metav1.ConditionTrue)
	assert.Equal(t, "InvalidSpec", c.Reason)
	assert.Contains(t, c.Message, "annotation autoscaling.datadoghq.com/force-resources is")
	assert.Contains(t, c.Message, "at most 16384")
	c = e.waitCondition(ns, "many-containers", v1alpha2.ConditionError, metav1.ConditionTrue)
	assert.Equal(t, "InvalidSpec", c.Reason)
	assert.Contains(t, c.Message, "Deployment many-containers has 301 containers in its pod template: lazyscale autoscales at most 256")
	c = e.waitCondition(ns, "huge-answer", v1alpha2.ConditionVerticalAbleToRecommend, metav1.ConditionFalse)
	assert.Equal(t, "RecommendationFailed", c.Reason)
	assert.Contains(t, c.Message, "answer larger than 1048576 bytes")
	// The agent hung up after 1 MiB: the server wrote at most that and what the sockets buffer.
	assert.Less(t, served.Load(), int64(32<<20), "the agent read on past the bound")
	for _, name := range []string{"big-annotation", "many-containers", "huge-answer"} {
		d, err := e.Kube.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Empty(t, d.Spec.Template.Annotations[v1alpha2.RecommendationIDAnnotation], "%s: nothing rolled out", name)
	}
}
