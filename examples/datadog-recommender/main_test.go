package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/external"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

// The example answers lazyscale's client of the Datadog protocol: the "replicas" setting
// within the constraints, and a reply error for a bad setting.
func TestExampleSpeaksTheDatadogProtocol(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /recommend", recommend)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	source, err := external.New(configdef.ExternalRecommenderConfig{AllowedEndpoints: []string{"127.0.0.0/8"}, Timeout: 5 * time.Second, AnswerWait: 5 * time.Second})
	require.NoError(t, err)
	defer source.Close()
	ask := func(settings string) (*def.Recommendation, error) {
		five := int32(5)
		return source.Recommend(context.Background(), def.Request{TargetReplicas: 2, CurrentReplicas: 2, ReadyReplicas: 2,
			Autoscaler: &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web",
				Annotations: map[string]string{v1alpha2.CustomRecommenderAnnotation: `{"endpoint": "` + srv.URL + `/recommend", "protocol": "datadog", "settings": ` + settings + `}`}},
				Spec: v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"},
					Constraints: &v1alpha2.DatadogPodAutoscalerConstraints{MaxReplicas: &five}}}})
	}
	rec, err := ask(`{"replicas": "4"}`)
	require.NoError(t, err)
	assert.Equal(t, int32(4), *rec.Replicas)
	rec, err = ask(`{"replicas": "9"}`)
	require.NoError(t, err)
	assert.Equal(t, int32(5), *rec.Replicas, "within maxReplicas")
	_, err = ask(`{"replicas": "many"}`)
	require.ErrorContains(t, err, `recommender error 3: setting "replicas"`)
}
