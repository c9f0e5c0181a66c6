package integration

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// A DPA's author names its recommender, so the agent calls only allowed endpoints (by default
// in-cluster Services). A refused endpoint is the DPA's Error (RecommendationFailed) with the
// reason, and no connection is made: a listener on the refused address sees nothing.
func TestRecommenderEndpointRefused(t *testing.T) {
	e := newClusterEnv(t)
	ns := e.Namespace("refused", nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()

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
