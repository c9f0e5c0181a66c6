package controller

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

// countingSource answers a fixed replica count and counts its calls.
type countingSource struct{ calls int }

func (s *countingSource) Name() string                                { return "counting" }
func (s *countingSource) Priority() int                               { return 1 }
func (s *countingSource) Applies(*v1alpha2.DatadogPodAutoscaler) bool { return true }
func (s *countingSource) Recommend(context.Context, def.Request) (*def.Recommendation, error) {
	s.calls++
	return &def.Recommendation{Source: v1alpha2.DatadogPodAutoscalerAutoscalingValueSource, SourceName: "counting", Replicas: ptrTo(int32(3))}, nil
}

// Sources are asked again only when what they are told changed, or half a resync period passed.
func TestGatherReusesAnswers(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	src := &countingSource{}
	c := &Controller{sources: []def.RecommendationSource{src}, now: func() time.Time { return now },
		cfg: configdef.WorkloadAutoscalingConfig{ResyncPeriod: time.Minute}, answers: map[string]cachedAnswer{}}
	dpa := &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 1}}
	req := func(current, ready int32) def.Request {
		return def.Request{CurrentReplicas: current, ReadyReplicas: ready}
	}

	c.gather(context.Background(), dpa, req(2, 2))
	c.gather(context.Background(), dpa, req(2, 2)) // a status echo
	assert.Equal(t, 1, src.calls, "same input: answered from the cache")

	c.gather(context.Background(), dpa, req(3, 2))
	assert.Equal(t, 2, src.calls, "a pod more: asked again")
	dpa.Annotations = map[string]string{v1alpha2.ForceReplicasAnnotation: "4"}
	c.gather(context.Background(), dpa, req(3, 2))
	assert.Equal(t, 3, src.calls, "annotations changed: asked again")
	now = now.Add(31 * time.Second)
	g := c.gather(context.Background(), dpa, req(3, 2))
	assert.Equal(t, 4, src.calls, "half a resync period later: asked again")
	assert.Equal(t, int32(3), *g.horizontal[v1alpha2.DatadogPodAutoscalerAutoscalingValueSource].Replicas)
}

// pendingSource answers Pending (with its last answer) until answered is set.
type pendingSource struct {
	countingSource
	answered bool
	last     *def.Recommendation
}

func (s *pendingSource) Recommend(ctx context.Context, req def.Request) (*def.Recommendation, error) {
	if !s.answered {
		s.calls++
		return nil, &def.Pending{Endpoint: "http://rec.svc", Since: time.Unix(0, 0), Last: s.last}
	}
	return s.countingSource.Recommend(ctx, req)
}

// A pending answer is not cached, its last answer stands in, and the selection says it waits;
// the source's notification drops the cache so that the next reconcile asks again.
func TestGatherPendingIsNotCached(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	src := &pendingSource{}
	c := &Controller{sources: []def.RecommendationSource{src}, now: func() time.Time { return now },
		cfg: configdef.WorkloadAutoscalingConfig{ResyncPeriod: time.Minute}, answers: map[string]cachedAnswer{}}
	dpa := &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Generation: 1}}
	req := def.Request{CurrentReplicas: 2}

	g := c.gather(context.Background(), dpa, req)
	assert.Equal(t, []string{"counting: waiting for the answer of http://rec.svc, asked at 1970-01-01T00:00:00Z"}, g.pending)
	assert.Empty(t, g.errs)
	sel := selectHorizontal(dpa, g, now)
	assert.Equal(t, reasonPending, sel.reason)
	assert.Nil(t, sel.rec)
	c.gather(context.Background(), dpa, req)
	assert.Equal(t, 2, src.calls, "not cached: asked again")

	src.last = &def.Recommendation{Source: v1alpha2.DatadogPodAutoscalerAutoscalingValueSource, SourceName: "counting", Timestamp: now, Replicas: ptrTo(int32(5))}
	g = c.gather(context.Background(), dpa, req)
	sel = selectHorizontal(dpa, g, now)
	assert.Equal(t, int32(5), *sel.rec.Replicas, "the last answer stands in")

	src.answered = true
	g = c.gather(context.Background(), dpa, req)
	assert.Equal(t, int32(3), *g.horizontal[v1alpha2.DatadogPodAutoscalerAutoscalingValueSource].Replicas)
	c.gather(context.Background(), dpa, req)
	assert.Equal(t, 4, src.calls, "answered: cached")
	c.answerArrived("shop", "web") // no term: nothing queued, the cache dropped
	c.gather(context.Background(), dpa, req)
	assert.Equal(t, 5, src.calls, "asked again after the notification")
}
