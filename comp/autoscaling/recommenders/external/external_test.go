package external

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

func request(endpoint string) def.Request {
	return def.Request{
		Autoscaler: &v1alpha2.DatadogPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "u1",
			Annotations: map[string]string{v1alpha2.CustomRecommenderAnnotation: `{"endpoint": "` + endpoint + `", "settings": {"k": 1}}`}},
			Spec: v1alpha2.DatadogPodAutoscalerSpec{TargetRef: v1alpha2.CrossVersionObjectReference{Kind: "Deployment", Name: "web"}}},
		CurrentReplicas: 3, ReadyReplicas: 2,
		Containers: []def.ContainerResources{{Name: "app", Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}},
	}
}

func TestRecommend(t *testing.T) {
	var got RecommendationRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodPost, r.Method)
		assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
		require.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		_, _ = w.Write([]byte(`{"timestamp": "2026-11-27T10:00:00Z", "replicas": 4, "containers": [{"name": "app", "requests": {"cpu": "300m"}}]}`))
	}))
	defer srv.Close()
	s, err := New(configdef.ExternalRecommenderConfig{AllowedEndpoints: loopback, AnswerWait: time.Minute, Timeout: 5 * time.Second})
	require.NoError(t, err)
	defer s.Close()
	rec, err := s.Recommend(context.Background(), request(srv.URL))
	require.NoError(t, err)
	assert.Equal(t, int32(4), *rec.Replicas)
	assert.Equal(t, "300m", rec.Containers[0].Requests.Cpu().String())
	assert.Equal(t, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), rec.Timestamp.UTC())
	assert.Equal(t, v1alpha2.DatadogPodAutoscalerAutoscalingValueSource, rec.Source)
	assert.Equal(t, AutoscalerRef{Namespace: "shop", Name: "web", UID: "u1"}, got.Autoscaler)
	assert.Equal(t, int32(3), got.CurrentReplicas)
	assert.JSONEq(t, `{"k": 1}`, string(got.Settings))
}

func TestRecommendErrors(t *testing.T) {
	slow := make(chan struct{})
	defer close(slow)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"status", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "model not trained", http.StatusServiceUnavailable)
		}, "HTTP 503: model not trained"},
		{"garbage", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) }, "answer is not a recommendation"},
		{"negative", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"replicas": -1}`)) }, "negative replicas"},
		{"unnamed container", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`{"containers": [{"requests": {"cpu": "1"}}]}`))
		}, "without a name"},
		{"timeout", func(_ http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body) // then the server notices the client hanging up
			select {
			case <-slow:
			case <-r.Context().Done():
			}
		}, "Client.Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			s, err := New(configdef.ExternalRecommenderConfig{AllowedEndpoints: loopback, AnswerWait: time.Minute, Timeout: 300 * time.Millisecond})
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Recommend(context.Background(), request(srv.URL))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), srv.URL, "the endpoint is named")
		})
	}
	_, err := ParseAnnotation(`{"endpoint": "ftp://x"}`)
	assert.ErrorContains(t, err, "not an http(s) URL")
	_, err = ParseAnnotation(`not json`)
	assert.ErrorContains(t, err, v1alpha2.CustomRecommenderAnnotation)
}

// mTLS: the recommender requires a client certificate signed by its CA; lazyscale presents
// the configured one and trusts only the configured CA.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	caCert, caKey := newCA(t)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	caFile := write("ca.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}))
	serverPEM, serverKey := issue(t, caCert, caKey, x509.ExtKeyUsageServerAuth)
	clientPEM, clientKey := issue(t, caCert, caKey, x509.ExtKeyUsageClientAuth)
	serverPair, err := tls.X509KeyPair(serverPEM, serverKey)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"replicas": 2}`))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverPair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()

	withCert, err := New(configdef.ExternalRecommenderConfig{AllowedEndpoints: loopback, AnswerWait: time.Minute, Timeout: 5 * time.Second, TLS: configdef.ExternalRecommenderTLSConfig{
		CAFile: caFile, CertFile: write("client.crt", clientPEM), KeyFile: write("client.key", clientKey)}})
	require.NoError(t, err)
	defer withCert.Close()
	rec, err := withCert.Recommend(context.Background(), request(srv.URL))
	require.NoError(t, err)
	assert.Equal(t, int32(2), *rec.Replicas)

	withoutCert, err := New(configdef.ExternalRecommenderConfig{AllowedEndpoints: loopback, AnswerWait: time.Minute, Timeout: 5 * time.Second, TLS: configdef.ExternalRecommenderTLSConfig{CAFile: caFile}})
	require.NoError(t, err)
	defer withoutCert.Close()
	_, err = withoutCert.Recommend(context.Background(), request(srv.URL))
	assert.Error(t, err, "the server requires a client certificate")

	_, err = New(configdef.ExternalRecommenderConfig{AllowedEndpoints: loopback, AnswerWait: time.Minute, Timeout: time.Second, TLS: configdef.ExternalRecommenderTLSConfig{CAFile: filepath.Join(dir, "missing")}})
	var cfgErr *configdef.Error
	require.ErrorAs(t, err, &cfgErr)
	assert.Equal(t, "autoscaling.workload.external_recommender.tls.ca_file", cfgErr.Key)
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "recommender-ca"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// The Datadog Cluster Agent's protocol: the request as the Cluster Agent fills it (the JSON
// form of WorkloadRecommendationRequest), the reply read as a WorkloadRecommendationReply,
// with an int32 written as a string as the proto3 JSON mapping allows; a reply's error is
// the source's error.
func TestRecommendDatadogProtocol(t *testing.T) {
	var got map[string]any
	reply := `{"timestamp": "2026-11-27T10:00:00Z", "targetReplicas": "5", "reason": "cpu above target", "observedTargets": [{"type": "cpu", "targetValue": 0.9}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, json.NewDecoder(r.Body).Decode(&got))
		_, _ = w.Write([]byte(reply))
	}))
	defer srv.Close()
	s, err := New(configdef.ExternalRecommenderConfig{AllowedEndpoints: loopback, AnswerWait: time.Minute, Timeout: 5 * time.Second, ClusterName: "prod-1"})
	require.NoError(t, err)
	defer s.Close()
	req := request(srv.URL)
	req.TargetReplicas = 3
	util, two, ten := int32(70), int32(2), int32(10)
	req.Autoscaler.Annotations[v1alpha2.CustomRecommenderAnnotation] = `{"endpoint": "` + srv.URL + `", "protocol": "datadog", "settings": {"model": "p95"}}`
	req.Autoscaler.Spec.TargetRef.APIVersion = "apps/v1"
	req.Autoscaler.Spec.Constraints = &v1alpha2.DatadogPodAutoscalerConstraints{MinReplicas: &two, MaxReplicas: &ten}
	req.Autoscaler.Spec.Objectives = []v1alpha2.DatadogPodAutoscalerObjective{
		{Type: v1alpha2.DatadogPodAutoscalerPodResourceObjectiveType, PodResource: &v1alpha2.DatadogPodAutoscalerPodResourceObjective{Name: "cpu",
			Value: v1alpha2.DatadogPodAutoscalerObjectiveValue{Type: v1alpha2.DatadogPodAutoscalerUtilizationObjectiveValueType, Utilization: &util}}},
		{Type: v1alpha2.DatadogPodAutoscalerCustomQueryObjectiveType},
	}
	rec, err := s.Recommend(context.Background(), req)
	require.NoError(t, err)
	assert.Equal(t, int32(5), *rec.Replicas)
	assert.Empty(t, rec.Containers)
	assert.Equal(t, v1alpha2.DatadogPodAutoscalerExternalValueSource, rec.Source)
	assert.Equal(t, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), rec.Timestamp.UTC())
	want := map[string]any{
		"targetRef":   map[string]any{"cluster": "prod-1", "namespace": "shop", "kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
		"constraints": map[string]any{"minReplicas": float64(2), "maxReplicas": float64(10)},
		"state":       map[string]any{"desiredReplicas": float64(3), "currentReplicas": float64(3), "readyReplicas": float64(2)},
		"targets":     []any{map[string]any{"type": "cpu", "targetValue": 0.7}}, // the custom query has none
		"settings":    map[string]any{"model": "p95"},
	}
	assert.Equal(t, want, got)

	reply = `{"error": {"code": 3, "message": "not enough data"}}`
	_, err = s.Recommend(context.Background(), req)
	require.ErrorContains(t, err, "recommender error 3: not enough data")
	reply = `{"targetReplicas": -1}`
	_, err = s.Recommend(context.Background(), req)
	require.ErrorContains(t, err, "negative targetReplicas")

	req.Autoscaler.Annotations[v1alpha2.CustomRecommenderAnnotation] = `{"endpoint": "` + srv.URL + `", "protocol": "grpc"}`
	_, err = s.Recommend(context.Background(), req)
	require.ErrorContains(t, err, `protocol "grpc"`)
}
