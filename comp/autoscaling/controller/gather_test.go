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
