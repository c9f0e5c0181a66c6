package impl

import (
	"strings"
	"sync"
	"unique"

	corev1 "k8s.io/api/core/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// intern returns the canonical copy of s. Namespaces, owners, phases and recommendation ids
// repeat across thousands of pods; one copy each is what keeps a pod entity small.
func intern(s string) string { return strs.intern(s) }

// strs holds the canonical copies, strongly. unique.Make(s).Value() was used before, but it
// shares nothing over time: the string it returns does not keep the handle alive, so once a
// GC runs between two pods of one workload, the second gets a copy of its own. Under slow pod
// churn each pod ended up with its own copies (the 30-minute soak's steady heap growth, until
// every pod had been replaced).
var strs = &interner{limit: 8192}

// interner keeps one copy of each string in two generations: a lookup promotes a string of
// the old generation into the current one, and when the current one is as large as the old one
// (and at least limit) it becomes the old one and the one before is dropped. A string new pods
// use stays shared; one no new pod has used for a generation is let go. A generation follows
// the strings in use, so it holds at most twice the most strings in use at once, or 2×limit.
type interner struct {
	mu        sync.Mutex
	cur, prev map[string]string
	limit     int
}

func (in *interner) intern(s string) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if v, ok := in.cur[s]; ok {
		return v
	}
	v, ok := in.prev[s]
	if !ok {
		v = strings.Clone(s) // not the decoded pod's bytes
	}
	if in.cur == nil || len(in.cur) >= max(in.limit, len(in.prev)) {
		in.prev, in.cur = in.cur, make(map[string]string, len(in.cur))
	}
	in.cur[v] = v
	return v
}

// podEntity builds the slim entity from a pod; nothing of the pod is retained but its name
// and UID and interned values.
func podEntity(p *corev1.Pod) *wmdef.Pod {
	e := &wmdef.Pod{
		Namespace:    intern(p.Namespace),
		Name:         p.Name,
		UID:          string(p.UID),
		Owner:        owner(p),
		Phase:        intern(string(p.Status.Phase)),
		AutoscalerID: internNonEmpty(p.Annotations[v1alpha2.AutoscalerIDAnnotation]),
		RecID:        internNonEmpty(p.Annotations[v1alpha2.RecommendationIDAnnotation]),
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			e.Ready = c.Status == corev1.ConditionTrue
		}
	}
	// The containers, then the native sidecars (init containers with restartPolicy Always):
	// both run for the pod's life, use resources and are scaled. Each is interned whole: the
	// pods of a workload share one copy.
	n := len(p.Spec.Containers)
	for i := range p.Spec.InitContainers {
		if sidecar(&p.Spec.InitContainers[i]) {
			n++
		}
	}
	e.Containers = make([]unique.Handle[wmdef.Container], 0, n)
	add := func(c *corev1.Container) {
		e.Containers = append(e.Containers, unique.Make(wmdef.Container{
			Name:     c.Name,
			Requests: wmdef.NewResources(c.Resources.Requests),
			Limits:   wmdef.NewResources(c.Resources.Limits),
		}))
	}
	for i := range p.Spec.Containers {
		add(&p.Spec.Containers[i])
	}
	for i := range p.Spec.InitContainers {
		if c := &p.Spec.InitContainers[i]; sidecar(c) {
			add(c)
		}
	}
	e.OOMKills = append(oomKills(p.Status.ContainerStatuses), oomKills(p.Status.InitContainerStatuses)...)
	return e
}

func sidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func internNonEmpty(s string) string {
	if s == "" {
		return ""
	}
	return intern(s)
}

// oomKills returns the containers whose current or last termination was an OOM kill.
func oomKills(statuses []corev1.ContainerStatus) []wmdef.OOMKill {
	var out []wmdef.OOMKill
	for _, cs := range statuses {
		for _, t := range []*corev1.ContainerStateTerminated{cs.State.Terminated, cs.LastTerminationState.Terminated} {
			if t != nil && t.Reason == "OOMKilled" {
				out = append(out, wmdef.OOMKill{Container: intern(cs.Name), At: t.FinishedAt.Time})
				break
			}
		}
	}
	return out
}

// owner resolves and interns the pod's owner.
func owner(p *corev1.Pod) wmdef.Owner {
	o := wmdef.ResolveOwner(p)
	if o.Kind == "" {
		return o
	}
	return wmdef.Owner{Kind: intern(o.Kind), Name: intern(o.Name)}
}
