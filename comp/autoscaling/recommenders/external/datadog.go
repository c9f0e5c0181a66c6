package external

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
)

// Protocols of the custom-recommender annotation's "protocol".
const (
	// ProtocolLazyscale is lazyscale's JSON (RecommendationRequest, RecommendationResponse):
	// replicas and container resources. The default.
	ProtocolLazyscale = "lazyscale"
	// ProtocolDatadog is the Datadog Cluster Agent's: the JSON form (proto3 JSON mapping) of the
	// WorkloadRecommendationRequest and WorkloadRecommendationReply messages published in
	// DataDog/agent-payload (proto/autoscaling/kubernetes). Replicas only.
	ProtocolDatadog = "datadog"
)

// The Datadog protocol's messages, written here from the published field list. Field names
// are the proto3 JSON names.
type (
	// DatadogRequest is a WorkloadRecommendationRequest.
	DatadogRequest struct {
		TargetRef   DatadogTargetRef           `json:"targetRef"`
		Constraints DatadogConstraints         `json:"constraints"`
		State       DatadogState               `json:"state"`
		Targets     []DatadogTarget            `json:"targets,omitempty"`
		Settings    map[string]json.RawMessage `json:"settings,omitempty"`
	}
	// DatadogTargetRef is a WorkloadTargetRef.
	DatadogTargetRef struct {
		Cluster    string `json:"cluster"`
		Namespace  string `json:"namespace"`
		Kind       string `json:"kind"`
		Name       string `json:"name"`
		APIVersion string `json:"apiVersion,omitempty"`
	}
	// DatadogConstraints is a WorkloadRecommendationConstraints.
	DatadogConstraints struct {
		MinReplicas int32 `json:"minReplicas"`
		MaxReplicas int32 `json:"maxReplicas"`
	}
	// DatadogState is a WorkloadState.
	DatadogState struct {
		DesiredReplicas int32  `json:"desiredReplicas"`
		CurrentReplicas *int32 `json:"currentReplicas,omitempty"`
		ReadyReplicas   *int32 `json:"readyReplicas,omitempty"`
	}
	// DatadogTarget is a WorkloadRecommendationTarget: a resource ("cpu", "memory") and the
	// utilization to keep, as a fraction (0.7 for 70 %).
	DatadogTarget struct {
		Type        string  `json:"type"`
		TargetValue float64 `json:"targetValue"`
		LowerBound  float64 `json:"lowerBound,omitempty"`
		UpperBound  float64 `json:"upperBound,omitempty"`
	}
	// DatadogReply is a WorkloadRecommendationReply.
	DatadogReply struct {
		Error          *DatadogError `json:"error,omitempty"`
		Timestamp      *time.Time    `json:"timestamp,omitempty"`
		TargetReplicas protoInt32    `json:"targetReplicas"`
		Reason         string        `json:"reason,omitempty"`
	}
	// DatadogError is an Error.
	DatadogError struct {
		Code    *protoInt32 `json:"code,omitempty"`
		Message string      `json:"message"`
	}
)

// protoInt32 reads an int32 as the proto3 JSON mapping allows it: a number or a string.
type protoInt32 int32

func (p *protoInt32) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "null" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return fmt.Errorf("not an int32: %s", b)
	}
	*p = protoInt32(n)
	return nil
}

// datadogRequest builds the Cluster Agent's request for a DPA, as the Cluster Agent fills it:
// one target per resource objective (custom queries have none), the constraints (0 when
// unset), the replica counts, and the settings.
func datadogRequest(req def.Request, cluster string, settings json.RawMessage) (DatadogRequest, error) {
	dpa := req.Autoscaler
	out := DatadogRequest{
		TargetRef: DatadogTargetRef{Cluster: cluster, Namespace: dpa.Namespace, Kind: dpa.Spec.TargetRef.Kind,
			Name: dpa.Spec.TargetRef.Name, APIVersion: dpa.Spec.TargetRef.APIVersion},
		State: DatadogState{DesiredReplicas: req.TargetReplicas, CurrentReplicas: &req.CurrentReplicas, ReadyReplicas: &req.ReadyReplicas},
	}
	if c := dpa.Spec.Constraints; c != nil {
		if c.MinReplicas != nil {
			out.Constraints.MinReplicas = *c.MinReplicas
		}
		if c.MaxReplicas != nil {
			out.Constraints.MaxReplicas = *c.MaxReplicas
		}
	}
	if t := dpa.Status.Horizontal; t != nil && t.Target != nil {
		out.State.DesiredReplicas = t.Target.DesiredReplicas
	}
	for _, o := range v1alpha2.ObjectivesOf(&dpa.Spec) {
		var name string
		var value v1alpha2.DatadogPodAutoscalerObjectiveValue
		switch {
		case o.PodResource != nil:
			name, value = string(o.PodResource.Name), o.PodResource.Value
		case o.ContainerResource != nil:
			name, value = string(o.ContainerResource.Name), o.ContainerResource.Value
		default:
			continue
		}
		t := DatadogTarget{Type: name}
		if value.Utilization != nil {
			t.TargetValue = float64(*value.Utilization) / 100
		}
		out.Targets = append(out.Targets, t)
	}
	if len(settings) > 0 {
		if err := json.Unmarshal(settings, &out.Settings); err != nil {
			return out, fmt.Errorf("annotation %s: settings must be an object for the datadog protocol: %w", v1alpha2.CustomRecommenderAnnotation, err)
		}
	}
	return out, nil
}

// datadogRecommendation reads a WorkloadRecommendationReply.
func datadogRecommendation(data []byte) (*def.Recommendation, error) {
	var reply DatadogReply
	if err := json.Unmarshal(data, &reply); err != nil {
		return nil, fmt.Errorf("answer is not a WorkloadRecommendationReply: %w", err)
	}
	if e := reply.Error; e != nil {
		if e.Code != nil {
			return nil, fmt.Errorf("recommender error %d: %s", *e.Code, e.Message)
		}
		return nil, errors.New("recommender error: " + e.Message)
	}
	if reply.TargetReplicas < 0 {
		return nil, fmt.Errorf("negative targetReplicas %d", reply.TargetReplicas)
	}
	n := int32(reply.TargetReplicas)
	rec := &def.Recommendation{Source: v1alpha2.DatadogPodAutoscalerExternalValueSource, SourceName: "external (datadog protocol)",
		Timestamp: time.Now(), Replicas: &n}
	if reply.Timestamp != nil {
		rec.Timestamp = *reply.Timestamp
	}
	return rec, nil
}
