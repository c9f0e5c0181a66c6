package impl

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
)

// defaultControlledResources are the resources a vertical recommendation may change when a
// constraint does not list them.
var defaultControlledResources = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}

// containerConstraint returns the constraint for a container: its own entry, else "*".
func containerConstraint(dpa *v1alpha2.DatadogPodAutoscaler, name string) *v1alpha2.DatadogPodAutoscalerContainerConstraints {
	if dpa.Spec.Constraints == nil {
		return nil
	}
	var wildcard *v1alpha2.DatadogPodAutoscalerContainerConstraints
	for i := range dpa.Spec.Constraints.Containers {
		c := &dpa.Spec.Constraints.Containers[i]
		if c.Name == name {
			return c
		}
		if c.Name == "*" {
			wildcard = c
		}
	}
	return wildcard
}

func requestsOnly(c *v1alpha2.DatadogPodAutoscalerContainerConstraints) bool {
	return c != nil && c.ControlledValues != nil && *c.ControlledValues == v1alpha2.DatadogPodAutoscalerContainerControlledValuesRequestsOnly
}

// constrain turns a recommendation into the desired resources the DPA allows: containers
// that exist in the workload and are enabled, controlled resources only, requests only when
// so configured, each value within [minAllowed, maxAllowed], no limit below its request. It
// returns the desired resources sorted by container name and what was clamped or dropped.
func constrain(dpa *v1alpha2.DatadogPodAutoscaler, rec []def.ContainerResources, template []corev1.Container) ([]v1alpha2.DatadogPodAutoscalerContainerResources, []string) {
	var out []v1alpha2.DatadogPodAutoscalerContainerResources
	var limited []string
	for _, r := range rec {
		if !slices.ContainsFunc(template, func(c corev1.Container) bool { return c.Name == r.Name }) {
			limited = append(limited, fmt.Sprintf("container %s is not in the workload", r.Name))
			continue
		}
		cons := containerConstraint(dpa, r.Name)
		if cons != nil && cons.Enabled != nil && !*cons.Enabled {
			continue
		}
		controlled := defaultControlledResources
		if cons != nil && len(cons.ControlledResources) > 0 {
			controlled = cons.ControlledResources
		}
		d := v1alpha2.DatadogPodAutoscalerContainerResources{Name: r.Name}
		d.Requests = clampList(r.Requests, controlled, cons, "request of "+r.Name, &limited)
		if !requestsOnly(cons) {
			d.Limits = clampList(r.Limits, controlled, cons, "limit of "+r.Name, &limited)
			for name, l := range d.Limits {
				if req, ok := d.Requests[name]; ok && l.Cmp(req) < 0 {
					d.Limits[name] = req.DeepCopy()
					limited = append(limited, fmt.Sprintf("%s limit of %s raised to its request %s", name, r.Name, req.String()))
				}
			}
		}
		if len(d.Requests) == 0 && len(d.Limits) == 0 {
			continue
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b v1alpha2.DatadogPodAutoscalerContainerResources) int { return strings.Compare(a.Name, b.Name) })
	return out, limited
}

// clampList keeps the controlled resources of in, each within the constraint's bounds.
func clampList(in corev1.ResourceList, controlled []corev1.ResourceName, cons *v1alpha2.DatadogPodAutoscalerContainerConstraints, what string, limited *[]string) corev1.ResourceList {
	if len(in) == 0 {
		return nil
	}
	out := corev1.ResourceList{}
	for name, q := range in {
		if !slices.Contains(controlled, name) {
			continue
		}
		q = q.DeepCopy()
		if cons != nil {
			if lo, ok := cons.MinAllowed[name]; ok && q.Cmp(lo) < 0 {
				*limited = append(*limited, fmt.Sprintf("%s %s raised from %s to minAllowed %s", name, what, q.String(), lo.String()))
				q = lo.DeepCopy()
			}
			if hi, ok := cons.MaxAllowed[name]; ok && q.Cmp(hi) > 0 {
				*limited = append(*limited, fmt.Sprintf("%s %s lowered from %s to maxAllowed %s", name, what, q.String(), hi.String()))
				q = hi.DeepCopy()
			}
		}
		out[name] = q
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// recommendationVersion is the rec-id of desired resources: a stable hash of their canonical
// JSON (containers sorted by name; encoding/json sorts map keys; quantities in canonical
// form), 16 hex digits.
func recommendationVersion(desired []v1alpha2.DatadogPodAutoscalerContainerResources) string {
	canon := make([]v1alpha2.DatadogPodAutoscalerContainerResources, len(desired))
	for i, d := range desired {
		canon[i] = v1alpha2.DatadogPodAutoscalerContainerResources{Name: d.Name, Requests: canonical(d.Requests), Limits: canonical(d.Limits)}
	}
	slices.SortFunc(canon, func(a, b v1alpha2.DatadogPodAutoscalerContainerResources) int { return strings.Compare(a.Name, b.Name) })
	b, _ := json.Marshal(canon)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func canonical(l corev1.ResourceList) corev1.ResourceList {
	if len(l) == 0 {
		return nil
	}
	out := corev1.ResourceList{}
	for k, v := range l {
		out[k] = resource.MustParse(v.String()) // one spelling per amount: "1000m" and "1" hash alike
	}
	return out
}

// rolloutDecision says whether to trigger a rollout of the target now, and if not, when to
// look again (zero: only on the next change).
type rolloutDecision struct {
	Trigger bool
	Reason  string
	Retry   time.Duration
}

// decideRollout: pods that do not all carry version need a rollout. A new version is rolled
// out at once unless a rollout happened less than interval ago; the version already in the
// pod template (a rollout in progress) is rolled out again only when it stalled, that is
// when pods still lag interval after the last rollout.
func decideRollout(version, templateRecID string, pods podCounts, last *v1alpha2.DatadogPodAutoscalerVerticalAction, interval time.Duration, now time.Time) rolloutDecision {
	if pods.Current == 0 {
		return rolloutDecision{Reason: "no pods: new pods get the recommendation when created"}
	}
	if pods.ByRecID[version] == pods.Current {
		return rolloutDecision{Reason: "all pods carry the recommendation"}
	}
	var since time.Duration
	if last != nil {
		since = now.Sub(last.Time.Time)
	}
	if last == nil || since >= interval {
		if templateRecID == version {
			return rolloutDecision{Trigger: true, Reason: fmt.Sprintf("rollout of %s stalled: %d of %d pods updated after %s", version, pods.ByRecID[version], pods.Current, since.Round(time.Second))}
		}
		return rolloutDecision{Trigger: true, Reason: fmt.Sprintf("%d of %d pods lack recommendation %s", pods.Current-pods.ByRecID[version], pods.Current, version)}
	}
	if templateRecID == version {
		return rolloutDecision{Reason: "rollout in progress", Retry: interval - since}
	}
	return rolloutDecision{Reason: fmt.Sprintf("last rollout %s ago; next allowed in %s", since.Round(time.Second), (interval - since).Round(time.Second)), Retry: interval - since}
}

// setResource sets name to q in *rl (created when nil) and reports whether it changed.
func setResource(rl *corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) bool {
	if cur, ok := (*rl)[name]; ok && cur.Cmp(q) == 0 {
		return false
	}
	if *rl == nil {
		*rl = corev1.ResourceList{}
	}
	(*rl)[name] = q.DeepCopy()
	return true
}

// applyToContainer sets a container's resources from its desired resources. Requests are set
// as recommended. Limits: a recommended limit is used as is; otherwise, when limits are
// controlled and the container has a limit for a resource whose request changes, the limit
// keeps its ratio to the request (limit × new request / old request). With RequestsOnly,
// limits never change and a request above its limit is capped at the limit (the API rejects
// a request above its limit). It reports whether anything changed.
func applyToContainer(c *corev1.Container, d v1alpha2.DatadogPodAutoscalerContainerResources, onlyRequests bool) bool {
	changed := false
	oldRequests := c.Resources.Requests.DeepCopy()
	for name, q := range d.Requests {
		if onlyRequests {
			if l, ok := c.Resources.Limits[name]; ok && q.Cmp(l) > 0 {
				q = l.DeepCopy()
			}
		}
		changed = setResource(&c.Resources.Requests, name, q) || changed
	}
	if onlyRequests {
		return changed
	}
	for name, q := range d.Limits {
		changed = setResource(&c.Resources.Limits, name, q) || changed
	}
	for name, newReq := range d.Requests {
		if _, given := d.Limits[name]; given {
			continue
		}
		oldLimit, hasLimit := c.Resources.Limits[name]
		oldReq, hadReq := oldRequests[name]
		if !hasLimit || !hadReq || oldReq.IsZero() || oldReq.Cmp(newReq) == 0 {
			continue
		}
		scaled := resource.NewMilliQuantity(ratioMilli(oldLimit.MilliValue(), newReq.MilliValue(), oldReq.MilliValue()), oldLimit.Format)
		if scaled.Cmp(newReq) < 0 {
			nr := newReq.DeepCopy()
			scaled = &nr
		}
		c.Resources.Limits[name] = *scaled
		changed = true
	}
	return changed
}

// ratioMilli is limit × newReq / oldReq in milli-units, rounded up, without overflowing for
// amounts up to petabytes.
func ratioMilli(limit, newReq, oldReq int64) int64 {
	f := float64(limit) * (float64(newReq) / float64(oldReq))
	v := int64(f)
	if float64(v) < f {
		v++
	}
	return v
}
