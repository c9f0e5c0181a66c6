// Package manual is the recommendation source for values pinned by hand: the DPA annotations
// autoscaling.datadoghq.com/force-resources (container resources) and
// autoscaling.datadoghq.com/force-replicas (the replica count). The values still go through the
// DPA's constraints like any other recommendation.
package manual

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/validation"
)

// Priority ranks manual values above every other source.
const Priority = 100

// Source reads force-resources.
type Source struct{}

var _ def.RecommendationSource = Source{}

// Name implements def.RecommendationSource.
func (Source) Name() string { return "manual" }

// Priority implements def.RecommendationSource.
func (Source) Priority() int { return Priority }

// Applies implements def.RecommendationSource.
func (Source) Applies(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	_, resources := dpa.Annotations[v1alpha2.ForceResourcesAnnotation]
	_, replicas := dpa.Annotations[v1alpha2.ForceReplicasAnnotation]
	return resources || replicas
}

// Recommend implements def.RecommendationSource. The values are as fresh as the DPA: their
// timestamp is the time of the call.
func (Source) Recommend(_ context.Context, req def.Request) (*def.Recommendation, error) {
	rec := &def.Recommendation{Source: v1alpha2.DatadogPodAutoscalerManualValueSource, SourceName: "manual", Timestamp: time.Now()}
	if v, ok := req.Autoscaler.Annotations[v1alpha2.ForceResourcesAnnotation]; ok {
		containers, err := Parse(v)
		if err != nil {
			return nil, err
		}
		rec.Containers = containers
	}
	if v, ok := req.Autoscaler.Annotations[v1alpha2.ForceReplicasAnnotation]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("annotation %s: want a replica count (0 or more), got %q", v1alpha2.ForceReplicasAnnotation, v)
		}
		r := int32(n)
		rec.Replicas = &r
	}
	return rec, nil
}

// Parse reads a force-resources value: a JSON list of {"name", "requests", "limits"}, with
// quantities as the API writes them ("250m", "512Mi").
func Parse(value string) ([]def.ContainerResources, error) {
	var containers []def.ContainerResources
	if err := json.Unmarshal([]byte(value), &containers); err != nil {
		return nil, fmt.Errorf("annotation %s: want [{\"name\": ..., \"requests\": {...}, \"limits\": {...}}]: %w", v1alpha2.ForceResourcesAnnotation, err)
	}
	if len(containers) > validation.MaxContainers {
		return nil, fmt.Errorf("annotation %s: %d containers, at most %d", v1alpha2.ForceResourcesAnnotation, len(containers), validation.MaxContainers)
	}
	seen := map[string]bool{}
	for i, c := range containers {
		if c.Name == "" {
			return nil, fmt.Errorf("annotation %s: entry %d has no container name", v1alpha2.ForceResourcesAnnotation, i)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("annotation %s: container %q listed twice", v1alpha2.ForceResourcesAnnotation, c.Name)
		}
		seen[c.Name] = true
		if len(c.Requests) == 0 && len(c.Limits) == 0 {
			return nil, fmt.Errorf("annotation %s: container %q has neither requests nor limits", v1alpha2.ForceResourcesAnnotation, c.Name)
		}
		for name, q := range c.Requests {
			if q.Sign() < 0 {
				return nil, fmt.Errorf("annotation %s: container %q: negative request for %s", v1alpha2.ForceResourcesAnnotation, c.Name, name)
			}
		}
		for name, q := range c.Limits {
			if q.Sign() < 0 {
				return nil, fmt.Errorf("annotation %s: container %q: negative limit for %s", v1alpha2.ForceResourcesAnnotation, c.Name, name)
			}
		}
	}
	return containers, nil
}
