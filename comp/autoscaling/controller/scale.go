package controller

import (
	"cmp"
	"context"
	"fmt"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// targetResource maps the target's kind to its resource through the discovery REST mapper.
// A kind it does not know makes it rediscover (at most every mapperResetInterval), so a CRD
// installed after the first discovery is found.
func (c *Controller) targetResource(dpa *v1alpha2.DatadogPodAutoscaler) (schema.GroupVersionResource, error) {
	t := dpa.Spec.TargetRef
	gv, err := schema.ParseGroupVersion(cmp.Or(t.APIVersion, "apps/v1"))
	if err != nil {
		return schema.GroupVersionResource{}, fmt.Errorf("target apiVersion %q: %w", t.APIVersion, err)
	}
	gk := schema.GroupKind{Group: gv.Group, Kind: t.Kind}
	mapping, err := c.mapper.RESTMapping(gk, gv.Version)
	if meta.IsNoMatchError(err) && c.resetMapper() {
		mapping, err = c.mapper.RESTMapping(gk, gv.Version)
	}
	if err != nil {
		return schema.GroupVersionResource{}, fmt.Errorf("map %s %s: %w", cmp.Or(t.APIVersion, "apps/v1"), t.Kind, err)
	}
	return mapping.Resource, nil
}

// mapperResetInterval bounds rediscovery on unknown kinds.
const mapperResetInterval = 30 * time.Second

// resetMapper drops the mapper's discovery cache, at most every mapperResetInterval; it
// reports whether it did.
func (c *Controller) resetMapper() bool {
	r, ok := c.mapper.(meta.ResettableRESTMapper)
	if !ok {
		return false
	}
	c.mapperMu.Lock()
	now := time.Now()
	if now.Sub(c.mapperResetAt) < mapperResetInterval {
		c.mapperMu.Unlock()
		return false
	}
	c.mapperResetAt = now
	c.mapperMu.Unlock()
	r.Reset()
	return true
}

// targetScale is a target's /scale and the resource it was read from.
type targetScale struct {
	gr schema.GroupResource
	sc *autoscalingv1.Scale
}

// getScale reads the target's /scale through the REST mapper, so any scalable kind works.
func (c *Controller) getScale(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler) (*targetScale, error) {
	gvr, err := c.targetResource(dpa)
	if err != nil {
		return nil, err
	}
	gr := gvr.GroupResource()
	t := dpa.Spec.TargetRef
	sc, err := c.scales.Scales(dpa.Namespace).Get(ctx, gr, t.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read /scale of %s %s: %w", t.Kind, t.Name, err)
	}
	return &targetScale{gr: gr, sc: sc}, nil
}
