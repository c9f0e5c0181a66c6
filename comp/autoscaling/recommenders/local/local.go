// Package local is the recommendation source that needs nothing outside the cluster: it
// reads the target's pods' usage from the Kubernetes metrics API (metrics.k8s.io/v1beta1
// PodMetrics, served by metrics-server) and recommends
//   - replicas with the HPA formula (replicaformula.go) for each objective, the highest count
//     winning; the controller uses it only as each DPA's fallback policy allows;
//   - container requests from decaying usage histograms (histogram.go): CPU at p90, memory at
//     p95, plus 10 %, memory bumped after an OOM kill; used when no higher source has
//     container values.
//
// The state (histograms, what was sampled) lives in the leader's memory, bounded per
// container. A new leader rebuilds it: each DPA's histograms are seeded from the local
// recommendation the DPA's status already holds, and fresh samples take over from there.
package local

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned/typed/metrics/v1beta1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
)

// Priority ranks local values below manual and external ones.
const Priority = 10

// Name is the source's name in conditions and logs.
const Name = "local"

// minSamples is how many measurements a container needs before a vertical recommendation.
const minSamples = 3

// seedWeight is how many measurements the recommendation found in status counts for when a
// new leader rebuilds a DPA's histograms.
const seedWeight = 10

// The smallest requests the local recommender gives a container, however idle it was: a
// request of 1m CPU or a few MiB leaves no room for a start-up burst. Constraints' minAllowed
// raise them further.
const (
	minCPUCores    = 0.010
	minMemoryBytes = 32 << 20
)

// defaultBumpUpRatio multiplies memory after an OOM kill when the DPA does not say.
const defaultBumpUpRatio = 1.2

// Source is the local recommender. It is safe for concurrent use.
type Source struct {
	metrics metricsclient.PodMetricsesGetter
	now     func() time.Time

	mu     sync.Mutex
	states map[string]*autoscalerState // by namespace/name
	// notServed is, while the metrics API is not served, when to ask again and what to
	// answer until then: a cluster without metrics-server costs one request a minute, not one
	// per DPA evaluation.
	notServedUntil time.Time
	notServedErr   error
}

// notServedRetry is how long a "not served" answer from the metrics API is believed.
const notServedRetry = time.Minute

// autoscalerState is what the source remembers of one DPA.
type autoscalerState struct {
	containers map[string]*containerUsage
	// sampled is the timestamp of each pod's last PodMetrics taken in, so a measurement is
	// counted once however often the DPA is evaluated.
	sampled map[string]time.Time
	// ooms are the OOM kills taken in.
	ooms map[podContainer]time.Time
}

type podContainer struct{ pod, container string }

var (
	_ def.RecommendationSource = (*Source)(nil)
	_ def.Forgetter            = (*Source)(nil)
)

// New returns a source reading PodMetrics through metrics; now is the clock (nil: time.Now).
func New(metrics metricsclient.PodMetricsesGetter, now func() time.Time) *Source {
	if now == nil {
		now = time.Now
	}
	return &Source{metrics: metrics, now: now, states: map[string]*autoscalerState{}}
}

// Name implements def.RecommendationSource.
func (s *Source) Name() string { return Name }

// Priority implements def.RecommendationSource.
func (s *Source) Priority() int { return Priority }

// Applies implements def.RecommendationSource: every DPA may use local values.
func (s *Source) Applies(*v1alpha2.DatadogPodAutoscaler) bool { return true }

// Forget implements def.Forgetter.
func (s *Source) Forget(namespace, name string) {
	s.mu.Lock()
	delete(s.states, namespace+"/"+name)
	s.mu.Unlock()
}

// Recommend implements def.RecommendationSource. It returns replicas when at least one
// objective could be computed, and container requests for containers with enough samples.
func (s *Source) Recommend(ctx context.Context, req def.Request) (*def.Recommendation, error) {
	dpa := req.Autoscaler
	s.mu.Lock()
	until, notServed := s.notServedUntil, s.notServedErr
	s.mu.Unlock()
	if notServed != nil && s.now().Before(until) {
		return nil, notServed
	}
	list, err := s.metrics.PodMetricses(dpa.Namespace).List(ctx, metav1.ListOptions{LabelSelector: req.Selector})
	if err != nil {
		err = explain(err)
		if apierrors.IsNotFound(err) {
			s.mu.Lock()
			s.notServedUntil, s.notServedErr = s.now().Add(notServedRetry), err
			s.mu.Unlock()
		}
		return nil, err
	}
	byPod := make(map[string]*metricsv1beta1.PodMetrics, len(list.Items))
	for i := range list.Items {
		byPod[list.Items[i].Name] = &list.Items[i]
	}
	now := s.now()
	rec := &def.Recommendation{Source: v1alpha2.DatadogPodAutoscalerLocalValueSource, SourceName: Name, Timestamp: now}
	rec.Replicas = replicas(req, freshOnly(byPod, now))

	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state(dpa, now)
	st.learn(req, byPod)
	rec.Containers = keepIfClose(dpa, st.recommend(req, bumpUpRatio(dpa), now))
	return rec, nil
}

// changeThreshold is how far a local vertical value must move from the one in status before
// it replaces it: without it, usage wandering across a histogram bucket would make a new
// recommendation version, hence a rollout, every rollout interval.
const changeThreshold = 0.10

// keepIfClose returns, for each container whose new requests are all within changeThreshold of
// the local recommendation already in the DPA's status, the status's values instead.
func keepIfClose(dpa *v1alpha2.DatadogPodAutoscaler, fresh []def.ContainerResources) []def.ContainerResources {
	v := dpa.Status.Vertical
	if v == nil || v.Target == nil || v.Target.Source != v1alpha2.DatadogPodAutoscalerLocalValueSource {
		return fresh
	}
	prev := map[string]corev1.ResourceList{}
	for _, c := range v.Target.DesiredResources {
		prev[c.Name] = c.Requests
	}
	for i, c := range fresh {
		old, ok := prev[c.Name]
		if !ok || len(old) != len(c.Requests) {
			continue
		}
		close := true
		for name, q := range c.Requests {
			o, ok := old[name]
			if !ok || o.IsZero() || math.Abs(q.AsApproximateFloat64()/o.AsApproximateFloat64()-1) > changeThreshold {
				close = false
				break
			}
		}
		if close {
			fresh[i].Requests = old.DeepCopy()
		}
	}
	return fresh
}

// explain turns a metrics API error into what an operator needs to read.
func explain(err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("the metrics API (metrics.k8s.io/v1beta1 PodMetrics) is not served: install metrics-server: %w", err)
	case apierrors.IsServiceUnavailable(err):
		return fmt.Errorf("the metrics API (metrics.k8s.io/v1beta1) is unavailable: check its APIService and metrics-server: %w", err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("listing PodMetrics is forbidden: grant list on metrics.k8s.io pods: %w", err)
	}
	return fmt.Errorf("list PodMetrics: %w", err)
}

// state returns the DPA's state, rebuilding it from the DPA's status on first use.
func (s *Source) state(dpa *v1alpha2.DatadogPodAutoscaler, now time.Time) *autoscalerState {
	key := dpa.Namespace + "/" + dpa.Name
	if st := s.states[key]; st != nil {
		return st
	}
	st := &autoscalerState{containers: map[string]*containerUsage{}, sampled: map[string]time.Time{}, ooms: map[podContainer]time.Time{}}
	s.states[key] = st
	if v := dpa.Status.Vertical; v != nil && v.Target != nil && v.Target.Source == v1alpha2.DatadogPodAutoscalerLocalValueSource {
		for _, c := range v.Target.DesiredResources {
			u := st.usage(c.Name)
			if q, ok := c.Requests[corev1.ResourceCPU]; ok {
				u.cpu.add(q.AsApproximateFloat64()/(1+recommendationMargin), seedWeight, now)
			}
			if q, ok := c.Requests[corev1.ResourceMemory]; ok {
				u.memory.add(q.AsApproximateFloat64()/(1+recommendationMargin), seedWeight, now)
			}
			u.samples += seedWeight
		}
	}
	return st
}

func (st *autoscalerState) usage(container string) *containerUsage {
	u := st.containers[container]
	if u == nil {
		u = newContainerUsage()
		st.containers[container] = u
	}
	return u
}

// learn takes in each pod's new measurement and new OOM kills, and forgets pods that are gone.
func (st *autoscalerState) learn(req def.Request, byPod map[string]*metricsv1beta1.PodMetrics) {
	live := make(map[string]bool, len(req.Pods))
	for _, p := range req.Pods {
		live[p.Name] = true
		if m := byPod[p.Name]; m != nil && m.Timestamp.Time.After(st.sampled[p.Name]) {
			st.sampled[p.Name] = m.Timestamp.Time
			for _, c := range m.Containers {
				u := st.usage(c.Name)
				if q, ok := c.Usage[corev1.ResourceCPU]; ok {
					u.cpu.add(q.AsApproximateFloat64(), 1, m.Timestamp.Time)
				}
				if q, ok := c.Usage[corev1.ResourceMemory]; ok {
					u.memory.add(q.AsApproximateFloat64(), 1, m.Timestamp.Time)
				}
				u.samples++
			}
		}
		for _, k := range p.OOMKills {
			id := podContainer{p.Name, k.Container}
			if !k.At.After(st.ooms[id]) {
				continue
			}
			st.ooms[id] = k.At
			st.usage(k.Container).oomKilled(memoryLimit(p, k.Container), k.At)
		}
	}
	for name := range st.sampled {
		if !live[name] {
			delete(st.sampled, name)
		}
	}
	for id := range st.ooms {
		if !live[id.pod] {
			delete(st.ooms, id)
		}
	}
}

// memoryLimit is what the container could use when it was killed: its limit, else its
// request (bytes; 0 if neither).
func memoryLimit(p def.PodState, container string) float64 {
	for _, c := range p.Containers {
		if c.Name != container {
			continue
		}
		if q, ok := c.Limits[corev1.ResourceMemory]; ok {
			return q.AsApproximateFloat64()
		}
		if q, ok := c.Requests[corev1.ResourceMemory]; ok {
			return q.AsApproximateFloat64()
		}
	}
	return 0
}

// recommend returns requests for the template's containers that have enough samples: CPU
// rounded up to the millicore, memory to the MiB.
func (st *autoscalerState) recommend(req def.Request, bump float64, now time.Time) []def.ContainerResources {
	var out []def.ContainerResources
	for _, c := range req.Containers {
		u := st.containers[c.Name]
		if u == nil || u.samples < minSamples {
			continue
		}
		cpu, mem := u.recommend(bump, now)
		if cpu > 0 {
			cpu = max(cpu, minCPUCores)
		}
		if mem > 0 {
			mem = max(mem, minMemoryBytes)
		}
		rl := corev1.ResourceList{}
		if cpu > 0 {
			rl[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(math.Ceil(cpu*1000)), resource.DecimalSI)
		}
		if mem > 0 {
			const mi = 1 << 20
			rl[corev1.ResourceMemory] = *resource.NewQuantity(int64(math.Ceil(mem/mi))*mi, resource.BinarySI)
		}
		if len(rl) > 0 {
			out = append(out, def.ContainerResources{Name: c.Name, Requests: rl})
		}
	}
	return out
}

// bumpUpRatio is options.outOfMemory.bumpUpRatio, 1.2 by default.
func bumpUpRatio(dpa *v1alpha2.DatadogPodAutoscaler) float64 {
	if o := dpa.Spec.Options; o != nil && o.OutOfMemory != nil && o.OutOfMemory.BumpUpRatio != nil {
		if r := o.OutOfMemory.BumpUpRatio.AsApproximateFloat64(); r > 0 {
			return r
		}
	}
	return defaultBumpUpRatio
}

// maxMetricsAge is how old a pod's measurement may be and still count for replicas: older
// ones (a stuck metrics-server) count as missing, so they can only hold the count back.
const maxMetricsAge = 5 * time.Minute

// freshOnly drops measurements older than maxMetricsAge.
func freshOnly(byPod map[string]*metricsv1beta1.PodMetrics, now time.Time) map[string]*metricsv1beta1.PodMetrics {
	out := make(map[string]*metricsv1beta1.PodMetrics, len(byPod))
	for name, m := range byPod {
		if now.Sub(m.Timestamp.Time) <= maxMetricsAge {
			out[name] = m
		}
	}
	return out
}

// replicas applies the HPA formula to each objective (the fallback's own objectives when it
// has some) and returns the highest count, nil when no objective could be computed.
func replicas(req def.Request, byPod map[string]*metricsv1beta1.PodMetrics) *int32 {
	dpa := req.Autoscaler
	// The count to change is the workload's desired one, as for the HPA: within tolerance it
	// stays, and a target scaled to 0 is not autoscaled.
	if req.TargetReplicas == 0 || len(byPod) == 0 {
		return nil
	}
	objectives := v1alpha2.ObjectivesOf(&dpa.Spec)
	if f := dpa.Spec.Fallback; f != nil && len(f.Horizontal.Objectives) > 0 {
		objectives = f.Horizontal.Objectives
	}
	var best *int32
	for _, o := range objectives {
		samples, target, utilization, ok := objectiveSamples(o, req, byPod)
		if !ok {
			continue
		}
		n := replicasFor(req.TargetReplicas, samples, target, utilization, defaultTolerance)
		if best == nil || n > *best {
			best = &n
		}
	}
	return best
}

// objectiveSamples measures one objective on every pod: the pod's (or the objective's
// container's) usage and request of the resource.
func objectiveSamples(o v1alpha2.DatadogPodAutoscalerObjective, req def.Request, byPod map[string]*metricsv1beta1.PodMetrics) ([]podSample, float64, bool, bool) {
	var (
		res       corev1.ResourceName
		container string
		value     v1alpha2.DatadogPodAutoscalerObjectiveValue
	)
	switch {
	case o.Type == v1alpha2.DatadogPodAutoscalerPodResourceObjectiveType && o.PodResource != nil:
		res, value = o.PodResource.Name, o.PodResource.Value
	case o.Type == v1alpha2.DatadogPodAutoscalerContainerResourceObjectiveType && o.ContainerResource != nil:
		res, container, value = o.ContainerResource.Name, o.ContainerResource.Container, o.ContainerResource.Value
	default:
		return nil, 0, false, false
	}
	var target float64
	utilization := value.Type == v1alpha2.DatadogPodAutoscalerUtilizationObjectiveValueType
	switch {
	case utilization && value.Utilization != nil:
		target = float64(*value.Utilization) / 100
	case !utilization && value.AbsoluteValue != nil:
		target = value.AbsoluteValue.AsApproximateFloat64()
	default:
		return nil, 0, false, false
	}
	samples := make([]podSample, 0, len(req.Pods))
	var requested float64
	for _, p := range req.Pods {
		s := podSample{Ready: p.Ready}
		for _, c := range p.Containers {
			if container == "" || c.Name == container {
				if q, ok := c.Requests[res]; ok {
					s.Request += q.AsApproximateFloat64()
				}
			}
		}
		requested += s.Request
		if m := byPod[p.Name]; m != nil {
			for _, c := range m.Containers {
				if container == "" || c.Name == container {
					if q, ok := c.Usage[res]; ok {
						s.Usage += q.AsApproximateFloat64()
						s.HasMetric = true
					}
				}
			}
		}
		samples = append(samples, s)
	}
	if utilization && requested == 0 {
		return nil, 0, false, false // utilization of nothing requested: not computable
	}
	return samples, target, utilization, true
}
