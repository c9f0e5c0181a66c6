package impl

import (
	"strings"
	"unique"

	corev1 "k8s.io/api/core/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// intern returns the canonical copy of s. Namespaces, owners, label keys and values and
// container names repeat across thousands of pods; one copy each is what keeps a pod entity
// small.
func intern(s string) string { return unique.Make(s).Value() }

func autoscalingAnnotations(in map[string]string) map[string]string {
	var out map[string]string
	for k, v := range in {
		if strings.HasPrefix(k, v1alpha2.AnnotationPrefix) {
			if out == nil {
				out = map[string]string{}
			}
			out[intern(k)] = v
		}
	}
	return out
}

// podEntity builds the slim entity from a pod; nothing of the pod is retained but interned or
// copied strings and the label map's contents.
func podEntity(p *corev1.Pod) *wmdef.Pod {
	e := &wmdef.Pod{
		Namespace:   intern(p.Namespace),
		Name:        p.Name,
		UID:         string(p.UID),
		Owner:       owner(p),
		Phase:       intern(string(p.Status.Phase)),
		Created:     p.CreationTimestamp.Time,
		Annotations: autoscalingAnnotations(p.Annotations),
	}
	if len(p.Labels) > 0 {
		e.Labels = make(map[string]string, len(p.Labels))
		for k, v := range p.Labels {
			e.Labels[intern(k)] = intern(v)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			e.Ready = c.Status == corev1.ConditionTrue
		}
	}
	// The containers, then the native sidecars (init containers with restartPolicy Always):
	// both run for the pod's life, use resources and are scaled.
	e.Containers = make([]wmdef.Container, 0, len(p.Spec.Containers))
	add := func(c *corev1.Container) {
		e.Containers = append(e.Containers, wmdef.Container{
			Name:     intern(c.Name),
			Requests: resourceValues(c.Resources.Requests),
			Limits:   resourceValues(c.Resources.Limits),
		})
	}
	for i := range p.Spec.Containers {
		add(&p.Spec.Containers[i])
	}
	for i := range p.Spec.InitContainers {
		if c := &p.Spec.InitContainers[i]; c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	e.OOMKills = append(oomKills(p.Status.ContainerStatuses), oomKills(p.Status.InitContainerStatuses)...)
	return e
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

func resourceValues(rl corev1.ResourceList) []wmdef.ResourceValue {
	if len(rl) == 0 {
		return nil
	}
	out := make([]wmdef.ResourceValue, 0, len(rl))
	for name, q := range rl {
		out = append(out, wmdef.ResourceValue{Name: intern(string(name)), MilliValue: q.MilliValue()})
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
