package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/podwatcher"
)

// gathered is what the recommendation sources said about one DPA.
type gathered struct {
	// vertical is the highest-priority source's container values.
	vertical *def.Recommendation
	// horizontal holds, per kind of source (Manual, Autoscaling, Local), the replica count of
	// the highest-priority source of that kind; selectHorizontal picks among them.
	horizontal map[v1alpha2.DatadogPodAutoscalerValueSource]*def.Recommendation
	applied    bool     // some source applies to the DPA
	errs       []string // "source: error"
	// pending: "source: waiting for ..." of the sources whose answer is on its way (their
	// previous answer, if any, stands in). Such a result is not cached: the source queues the
	// DPA again when its answer is in.
	pending []string
	// refused: "source: error" of the sources that refuse what the DPA asks (def.Refusal),
	// also in errs.
	refused []string
}

// request is what the sources are told about a DPA and its target.
func (c *Controller) request(dpa *v1alpha2.DatadogPodAutoscaler, t def.Target, counts podwatcher.Counts, w *workload) def.Request {
	req := def.Request{Autoscaler: dpa.DeepCopy(), CurrentReplicas: counts.Current, ReadyReplicas: counts.Ready,
		TargetReplicas: w.replicas, Selector: w.selector, Pods: c.pods.PodStates(t)}
	if w.template == nil {
		return req
	}
	for _, ctr := range def.ScaledContainers(&w.template.Spec) {
		req.Containers = append(req.Containers, def.ContainerResources{Name: ctr.Name, Requests: ctr.Resources.Requests.DeepCopy(), Limits: ctr.Resources.Limits.DeepCopy()})
	}
	return req
}

// gather returns what the sources say about the DPA (see ask). The answers are reused for
// half a resync period while what the sources are told has not changed (the DPA's generation
// and annotations, the pods' readiness and OOM kills, the workload's container resources): a
// status write echoing back through the informer, or a burst of pod events, does not call an
// external recommender again.
func (c *Controller) gather(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, req def.Request) gathered {
	key, fp, now := dpa.Namespace+"/"+dpa.Name, fingerprint(dpa, req), c.now()
	c.answersMu.Lock()
	cached, ok := c.answers[key]
	c.answersMu.Unlock()
	if ok && cached.fingerprint == fp && now.Sub(cached.at) < c.cfg.ResyncPeriod/2 {
		return cached.g
	}
	g := c.ask(ctx, dpa, req)
	if len(g.pending) > 0 {
		return g
	}
	c.answersMu.Lock()
	c.answers[key] = cachedAnswer{fingerprint: fp, at: now, g: g}
	c.answersMu.Unlock()
	return g
}

// cachedAnswer is what the sources said about one DPA, and about which input.
type cachedAnswer struct {
	fingerprint string
	at          time.Time
	g           gathered
}

// fingerprint identifies what the sources are told about a DPA.
func fingerprint(dpa *v1alpha2.DatadogPodAutoscaler, req def.Request) string {
	type pod struct {
		Name  string
		Ready bool
		OOM   []def.OOMKill
	}
	pods := make([]pod, len(req.Pods))
	for i, p := range req.Pods {
		pods[i] = pod{p.Name, p.Ready, p.OOMKills}
	}
	b, _ := json.Marshal(struct {
		Generation  int64
		Annotations map[string]string
		Current     int32
		Ready       int32
		Containers  []def.ContainerResources
		Pods        []pod
		Target      int32
	}{dpa.Generation, dpa.Annotations, req.CurrentReplicas, req.ReadyReplicas, req.Containers, pods, req.TargetReplicas})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ask calls every applicable source once, highest priority first. Every source is asked, even
// once both parts have a value: which horizontal value is used depends on the external
// value's age and the DPA's fallback policy (selectHorizontal), and the local source learns
// from each call.
func (c *Controller) ask(ctx context.Context, dpa *v1alpha2.DatadogPodAutoscaler, req def.Request) gathered {
	g := gathered{horizontal: map[v1alpha2.DatadogPodAutoscalerValueSource]*def.Recommendation{}}
	for _, src := range c.sources {
		if !src.Applies(dpa) {
			continue
		}
		g.applied = true
		r, err := src.Recommend(ctx, req)
		if p, ok := errors.AsType[*def.Pending](err); ok {
			g.pending = append(g.pending, src.Name()+": "+p.Error())
			r, err = p.Last, nil
		}
		if err != nil {
			g.errs = append(g.errs, src.Name()+": "+err.Error())
			if _, ok := errors.AsType[def.Refusal](err); ok {
				g.refused = append(g.refused, src.Name()+": "+err.Error())
			}
			continue
		}
		if r == nil {
			continue
		}
		if g.vertical == nil && len(r.Containers) > 0 {
			g.vertical = r
		}
		if r.Replicas != nil && g.horizontal[r.Source] == nil {
			g.horizontal[r.Source] = r
		}
	}
	return g
}

// answerArrived: an asynchronous source has its answer about a DPA. The cached answers are
// dropped and the DPA queued, so that its next reconcile asks again and gets it.
func (c *Controller) answerArrived(namespace, name string) {
	key := namespace + "/" + name
	c.answersMu.Lock()
	delete(c.answers, key)
	c.answersMu.Unlock()
	c.enqueue([]string{key})
}
