// Package def defines the workload autoscaling stack: the DPA controller, the pod watcher, the
// vertical actuator and the pod patcher the admission webhook uses. The stack is the
// expensive part of lazyscale, so it starts only once the gate has opened and the pod
// collection has synced.
//
// Recommendations come from plugins: each RecommendationSource is provided into the fx value
// group "recommendation_sources", and the controller asks every source that applies to a DPA.
package def

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
)

// State is where the stack is in its start order.
type State string

// States, in order.
const (
	// StateDisabled: workload autoscaling is disabled; the stack never starts.
	StateDisabled State = "disabled"
	// StateWaitingForGate: dormant until the first trigger.
	StateWaitingForGate State = "waiting_for_gate"
	// StateWaitingForCaches: the gate is open; the DPA cache is syncing. The stack does not
	// wait for pods: only the leader collects them, and its controller waits for each DPA's
	// namespace.
	StateWaitingForCaches State = "waiting_for_caches"
	// StateRunning: controllers run and the pod patcher is installed.
	StateRunning State = "running"
	// StateStopped: the app is stopping.
	StateStopped State = "stopped"
)

// Component is the autoscaling stack. Its methods are safe for concurrent use.
type Component interface {
	// State returns where the stack is in its start order.
	State() State
	// Running returns a channel closed once the stack runs (controllers started, patcher
	// installed).
	Running() <-chan struct{}
}

// Clock is the time the controllers decide by (stabilization windows, scaling rules,
// rollout intervals, recommendation ages). It is optional in the fx graph: time.Now when
// absent; tests provide a fake one to step through time.
type Clock func() time.Time

// ContainerResources are one container's requests and limits.
type ContainerResources struct {
	Name     string              `json:"name"`
	Requests corev1.ResourceList `json:"requests,omitempty"`
	Limits   corev1.ResourceList `json:"limits,omitempty"`
}

// Request is what a recommendation source gets about one DPA. It is a copy: the source may
// keep it.
type Request struct {
	// Autoscaler is the DPA (a deep copy).
	Autoscaler *v1alpha2.DatadogPodAutoscaler
	// CurrentReplicas is the number of the target's pods lazyscale sees (not terminated).
	CurrentReplicas int32
	// TargetReplicas is the workload's desired count (spec.replicas, as /scale has it): the
	// count a horizontal recommendation changes. It may differ from CurrentReplicas while pods
	// come and go.
	TargetReplicas int32
	// ReadyReplicas is how many of them are ready.
	ReadyReplicas int32
	// Containers are the target's pod-template containers with their current resources.
	Containers []ContainerResources
	// Selector is the target's pod label selector (its spec.selector), in the API's string
	// form.
	Selector string
	// Pods are the target's live pods, as the pod collection has them.
	Pods []PodState
}

// PodState is one of the target's pods as the recommenders see it.
type PodState struct {
	Name  string
	Ready bool
	// Containers are the pod's own requests and limits (they may lag the template during a
	// rollout).
	Containers []ContainerResources
	// OOMKills are the containers whose last termination was an OOM kill.
	OOMKills []OOMKill
}

// OOMKill is a container's last termination by the out-of-memory killer.
type OOMKill struct {
	Container string
	At        time.Time
}

// Recommendation is what one source recommends for a DPA. Either part may be nil.
type Recommendation struct {
	// Source is the kind of source, as status reports it (Autoscaling, Manual, Local).
	Source v1alpha2.DatadogPodAutoscalerValueSource
	// SourceName names the plugin ("external", "manual").
	SourceName string
	// Timestamp is when the values were produced; stale values are not used.
	Timestamp time.Time
	// Replicas is the horizontal recommendation.
	Replicas *int32
	// Containers is the vertical recommendation, per container.
	Containers []ContainerResources
}

// RecommendationSource is a recommendation plugin.
type RecommendationSource interface {
	// Name identifies the source in logs, metrics and conditions.
	Name() string
	// Priority orders sources: for each part (horizontal, vertical), the applicable source
	// with the highest priority that returns values wins. Manual sources rank above remote
	// ones, remote ones above local ones.
	Priority() int
	// Applies reports whether the source has anything to say about the DPA (e.g. it carries
	// the source's annotation). It must be cheap and must not block.
	Applies(dpa *v1alpha2.DatadogPodAutoscaler) bool
	// Recommend returns the source's values, or an error that lands in the DPA's conditions.
	// It may block on the network, bounded by ctx. A source whose answer is still on its way
	// returns a *Pending error (and implements Asynchronous).
	Recommend(ctx context.Context, req Request) (*Recommendation, error)
}

// Refusal is the error of a source that refuses what a DPA asks of it (a recommender endpoint
// the agent may not call): its author must change the DPA, asking again does not help. The
// controller reports it in the DPA's Error condition too.
type Refusal interface {
	error
	Refusal()
}

// Pending is the error of a source whose answer to a DPA is still on its way. The controller
// acts on Last (the source's previous answer, nil if none) as if it were the answer, says in
// the conditions that it is waiting, and asks again when the source notifies it.
type Pending struct {
	// Endpoint is what is being asked (for the condition's message).
	Endpoint string
	// Since is when the call waited for was asked for.
	Since time.Time
	// Last is the source's previous answer for the DPA, nil if none.
	Last *Recommendation
}

func (p *Pending) Error() string {
	return "waiting for the answer of " + p.Endpoint + ", asked at " + p.Since.UTC().Format(time.RFC3339)
}

// Asynchronous is implemented by sources whose answers can arrive after Recommend returned a
// *Pending error. The source calls f with the DPA once its answer is in; the controller then
// asks it again. Unsubscribe stops the calls.
type Asynchronous interface {
	Subscribe(f func(namespace, name string)) (unsubscribe func())
}

// Forgetter is implemented by sources that keep state per DPA: the controller calls Forget
// when the DPA is deleted.
type Forgetter interface {
	Forget(namespace, name string)
}

// Sizer is implemented by the parts that keep entries per DPA, per workload or per endpoint:
// how many each map holds, by name. GET /debug/autoscaling shows them (with status.pprof on),
// to check that nothing is kept for a DPA once it is gone.
type Sizer interface {
	Sizes() map[string]int
}

// Target names an autoscaled workload: a DPA's targetRef in the DPA's namespace.
type Target struct {
	Namespace, Kind, Name string
}

func (t Target) String() string { return t.Namespace + "/" + t.Kind + "/" + t.Name }

// Status is the "autoscaling" section of /status.
type Status struct {
	State State     `json:"state"`
	Since time.Time `json:"since,omitzero"`
	// Leader is whether this replica runs the controllers; absent before the stack runs.
	Leader *bool `json:"leader,omitempty"`
	// TargetsFollowed is how many workloads the pod watcher keeps pods for; absent before the
	// stack runs.
	TargetsFollowed *int           `json:"targets_followed,omitempty"`
	Profiles        ProfilesStatus `json:"profiles"`
}

// ProfilesStatus is the cluster profile controller's part of Status.
type ProfilesStatus struct {
	// State is idle (gate closed, or a follower), waiting_for_profile or running.
	State string `json:"state"`
	// WorkloadsWatched is how many Deployments and StatefulSets it watches (metadata only).
	WorkloadsWatched int `json:"workloads_watched"`
}

// States of the cluster profile controller on this replica.
const (
	ProfilesIdle              = "idle"
	ProfilesWaitingForProfile = "waiting_for_profile"
	ProfilesRunning           = "running"
)

// Report is what the status page (/ui) shows of the running stack. Building it reads only what
// the running stack already holds: it starts nothing and lists nothing.
type Report struct {
	// Running is false until the stack runs (the gate closed, the caches syncing, or workload
	// autoscaling disabled); nothing else is set then.
	Running bool
	// Leader is whether this replica runs the controllers: only the leader collects pods and
	// keeps the timeline, so a follower's Autoscalers have neither.
	Leader bool
	// Timeline is how far back the timelines go (autoscaling.workload.timeline).
	Timeline time.Duration
	// Autoscalers are the DPAs, by namespace then name.
	Autoscalers []AutoscalerReport
}

// AutoscalerReport is one DPA as the stack holds it.
type AutoscalerReport struct {
	// DPA is the view's object: shared, read only.
	DPA *v1alpha2.DatadogPodAutoscaler
	// Pods are its target's pods, as the pod watcher holds them (nil on a follower, or before
	// the DPA's first reconcile).
	Pods []PodState
	// Timeline is its recent history, oldest first (nil on a follower).
	Timeline []TimelinePoint
}

// TimelinePoint is a DPA's state at one time. A field that is unknown (no recommendation yet,
// no replica count) is -1.
type TimelinePoint struct {
	At time.Time
	// CurrentReplicas and DesiredReplicas are the target's replicas and the horizontal
	// recommendation.
	CurrentReplicas, DesiredReplicas int32
	// CPUMilli and MemoryBytes are the vertical recommendation's requests summed over a pod's
	// containers.
	CPUMilli, MemoryBytes int64
}
