package controller

import (
	"fmt"
	"strings"
	"time"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
)

// fallbackPolicy is a DPA's horizontal fallback with the API's defaults filled in: enabled,
// ScaleUp only, after 600 s without a fresh external value.
type fallbackPolicy struct {
	enabled   bool
	direction v1alpha2.DatadogPodAutoscalerFallbackDirection
	stale     time.Duration
}

func fallbackOf(dpa *v1alpha2.DatadogPodAutoscaler) fallbackPolicy {
	p := fallbackPolicy{enabled: true, direction: v1alpha2.DatadogPodAutoscalerFallbackDirectionScaleUp, stale: 600 * time.Second}
	if f := dpa.Spec.Fallback; f != nil {
		h := f.Horizontal
		p.enabled = h.Enabled
		if h.Direction != "" {
			p.direction = h.Direction
		}
		if h.Triggers.StaleRecommendationThresholdSeconds > 0 {
			p.stale = time.Duration(h.Triggers.StaleRecommendationThresholdSeconds) * time.Second
		}
	}
	return p
}

// horizontalSelection is the horizontal value in use, and why.
type horizontalSelection struct {
	rec             *def.Recommendation // nil: none usable
	reason, message string              // for HorizontalAbleToRecommend
	direction       v1alpha2.DatadogPodAutoscalerFallbackDirection
}

// Reasons of HorizontalAbleToRecommend beyond the shared ones.
const (
	reasonLocalFallback = "LocalFallback"
	reasonStale         = "RecommendationStale"
)

// isExternal: a value from an external recommender (lazyscale's protocol says Autoscaling, as
// Datadog's own recommendations; the Cluster Agent's protocol says External).
func isExternal(s v1alpha2.DatadogPodAutoscalerValueSource) bool {
	return s == v1alpha2.DatadogPodAutoscalerAutoscalingValueSource || s == v1alpha2.DatadogPodAutoscalerExternalValueSource
}

// selectHorizontal picks the replica count to act on: a manual one; else the external one
// while it is fresh (generated within fallback.horizontal.triggers
// .staleRecommendationThresholdSeconds; the last one in status stands in while the external
// source fails); else, when fallback.horizontal.enabled, the local one, restricted to the
// fallback direction. A stale external value is never used.
func selectHorizontal(dpa *v1alpha2.DatadogPodAutoscaler, g gathered, now time.Time) horizontalSelection {
	if r := g.horizontal[v1alpha2.DatadogPodAutoscalerManualValueSource]; r != nil {
		return horizontalSelection{rec: r, reason: reasonReceived, message: "from the " + r.SourceName + " source"}
	}
	fb := fallbackOf(dpa)
	ext := g.horizontal[v1alpha2.DatadogPodAutoscalerAutoscalingValueSource]
	if ext == nil {
		ext = g.horizontal[v1alpha2.DatadogPodAutoscalerExternalValueSource] // the Datadog protocol's
	}
	if ext == nil {
		if st := dpa.Status.Horizontal; st != nil && st.Target != nil && isExternal(st.Target.Source) {
			ext = &def.Recommendation{Source: st.Target.Source, SourceName: "external (last value)", Timestamp: st.Target.GeneratedAt.Time,
				Replicas: ptrTo(st.Target.DesiredReplicas)}
		}
	}
	why := "no external recommendation"
	if len(g.pending) > 0 {
		why = "no external recommendation yet: " + strings.Join(g.pending, "; ")
	}
	if ext != nil {
		if now.Sub(ext.Timestamp) <= fb.stale {
			return horizontalSelection{rec: ext, reason: reasonReceived, message: "from the " + ext.SourceName + " source"}
		}
		why = fmt.Sprintf("the external recommendation generated at %s is older than %s (fallback.horizontal.triggers.staleRecommendationThresholdSeconds)",
			ext.Timestamp.UTC().Format(time.RFC3339), fb.stale)
	}
	errs := strings.Join(g.errs, "; ")
	if local := g.horizontal[v1alpha2.DatadogPodAutoscalerLocalValueSource]; local != nil {
		if fb.enabled {
			return horizontalSelection{rec: local, reason: reasonLocalFallback, direction: fb.direction,
				message: fmt.Sprintf("from the %s source, direction %s: %s", local.SourceName, fb.direction, why)}
		}
		why += "; fallback.horizontal.enabled is false"
	}
	switch {
	case ext != nil:
		if errs != "" {
			why += "; " + errs
		}
		return horizontalSelection{reason: reasonStale, message: why}
	case errs != "":
		return horizontalSelection{reason: reasonFailed, message: errs}
	case len(g.pending) > 0:
		return horizontalSelection{reason: reasonPending, message: strings.Join(g.pending, "; ")}
	case g.applied:
		return horizontalSelection{reason: reasonFailed, message: "the sources returned no replica count"}
	}
	return horizontalSelection{reason: reasonNoSource, message: "no source recommends replicas (annotate the DPA with " +
		v1alpha2.CustomRecommenderAnnotation + " or " + v1alpha2.ForceReplicasAnnotation + ")"}
}
