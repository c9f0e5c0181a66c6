package controller

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/external"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/manual"
	"github.com/lazyscale/lazyscale/comp/autoscaling/validation"
)

// FuzzDPA runs a DPA anyone with DPA rights could write (its spec and the annotations lazyscale
// parses) through what the controller does with it before acting: validation, the manual and
// external annotations, the vertical constraints and version, and the horizontal decision with
// its rules and stabilization. Nothing may panic. `go test` runs the seeds; to search:
//
//	go test ./comp/autoscaling/controller -run '^$' -fuzz FuzzDPA -fuzztime 5m
func FuzzDPA(f *testing.F) {
	f.Add([]byte(`{"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
		"constraints": {"minReplicas": 2, "maxReplicas": 10, "containers": [{"name": "*", "minAllowed": {"cpu": "100m"}, "maxAllowed": {"cpu": "2"}}]},
		"applyPolicy": {"scaleUp": {"strategy": "Max", "rules": [{"type": "Percent", "value": 100, "periodSeconds": 60}], "stabilizationWindowSeconds": 60},
			"scaleDown": {"strategy": "Min", "rules": [{"type": "Pods", "value": 1, "periodSeconds": 0}]}},
		"objectives": [{"type": "PodResource", "podResource": {"name": "cpu", "value": {"type": "Utilization", "utilization": 70}}}]}`),
		`[{"name": "app", "requests": {"cpu": "300m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}]`, "4",
		`{"endpoint": "http://reco.shop.svc:8080/recommend", "settings": {"factor": 1.5}}`)
	f.Add([]byte(`{"targetRef": {"kind": "Deployment", "name": "web"}, "constraints": {"minReplicas": 5, "maxReplicas": 1}}`), `[]`, "-1", `{}`)
	f.Add([]byte(`{"targetRef": {"kind": "StatefulSet", "name": "db"}, "applyPolicy": {"scaleUp": {"rules": [{"type": "Percent", "value": -2147483648, "periodSeconds": -1}]}}}`),
		`[{"name": "app", "requests": {"cpu": "1e100"}}]`, "2147483647", `{"endpoint": "http://[::1"}`)
	template := []corev1.Container{
		{Name: "app", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}},
		{Name: "sidecar"},
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, spec []byte, forceResources, forceReplicas, customRecommender string) {
		dpa := &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Annotations: map[string]string{
			v1alpha2.ForceResourcesAnnotation: forceResources, v1alpha2.ForceReplicasAnnotation: forceReplicas,
			v1alpha2.CustomRecommenderAnnotation: customRecommender,
		}}}
		if err := json.Unmarshal(spec, &dpa.Spec); err != nil {
			return // the apiserver refuses what its schema cannot decode
		}
		_ = validation.NotActedOn(dpa)
		if validation.Spec(dpa, "lazyscale") != nil {
			return // the controller stops here: Error, InvalidSpec
		}
		if validation.AgainstTemplate(dpa, &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: template}}) != nil {
			return
		}
		_, _ = external.ParseAnnotation(customRecommender)
		rec, err := manual.Source{}.Recommend(context.Background(), def.Request{Autoscaler: dpa})
		if err != nil || rec == nil {
			return
		}
		if len(rec.Containers) > 0 {
			desired, _ := constrain(dpa, rec.Containers, template)
			_ = recommendationVersion(desired, true)
			_, _ = podRequests(desired)
		}
		if rec.Replicas != nil {
			up, down := policies(dpa)
			for _, forced := range []bool{true, false} {
				_ = decideHorizontal(horizontalInput{now: now, current: 3, recommended: *rec.Replicas,
					minReplicas: constraintsMin(dpa), maxReplicas: constraintsMax(dpa), scaleUp: up, scaleDown: down, forced: forced,
					history:   []timedRecommendation{{at: now.Add(-time.Minute), replicas: 7}},
					actions:   []v1alpha2.DatadogPodAutoscalerHorizontalAction{{Time: metav1.NewTime(now.Add(-30 * time.Second)), FromReplicas: 2, ToReplicas: 3}},
					direction: fallbackOf(dpa).direction})
			}
		}
	})
}
