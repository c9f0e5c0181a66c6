// Package external is the recommendation source that asks an HTTP service named on the DPA
// (annotation autoscaling.datadoghq.com/custom-recommender). The protocol is documented in
// docs/external-recommender.md; RecommendationRequest and RecommendationResponse are its
// wire types.
package external

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

// Priority ranks external values below manual ones and above local ones.
const Priority = 50

// maxResponse caps what lazyscale reads from a recommender, maxRequest what it sends.
const (
	maxResponse = 1 << 20
	maxRequest  = 1 << 20
)

// Annotation is the value of the custom-recommender annotation.
type Annotation struct {
	Endpoint string          `json:"endpoint"`
	Settings json.RawMessage `json:"settings,omitempty"`
	// Protocol is ProtocolLazyscale (the default) or ProtocolDatadog.
	Protocol string `json:"protocol,omitempty"`
}

// RecommendationRequest is what lazyscale POSTs (Content-Type: application/json).
type RecommendationRequest struct {
	Autoscaler      AutoscalerRef                             `json:"autoscaler"`
	Target          v1alpha2.CrossVersionObjectReference      `json:"target"`
	Objectives      []v1alpha2.DatadogPodAutoscalerObjective  `json:"objectives"`
	Constraints     *v1alpha2.DatadogPodAutoscalerConstraints `json:"constraints,omitempty"`
	CurrentReplicas int32                                     `json:"currentReplicas"`
	ReadyReplicas   int32                                     `json:"readyReplicas"`
	Containers      []def.ContainerResources                  `json:"containers"`
	Settings        json.RawMessage                           `json:"settings,omitempty"`
}

// AutoscalerRef identifies the DPA.
type AutoscalerRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
}

// RecommendationResponse is what the recommender answers (HTTP 200, JSON). Every part is
// optional; an empty object means "no recommendation".
type RecommendationResponse struct {
	// Timestamp is when the values were computed (RFC 3339); the time of the answer if absent.
	Timestamp *time.Time `json:"timestamp,omitempty"`
	// Replicas is the horizontal recommendation.
	Replicas *int32 `json:"replicas,omitempty"`
	// Containers is the vertical recommendation.
	Containers []def.ContainerResources `json:"containers,omitempty"`
}

// Source calls external recommenders, each call outside the reconcile workers (see calls).
type Source struct {
	client  *http.Client
	guard   *guard
	cluster string // targetRef.cluster of the Datadog protocol
	calls   *calls
}

var (
	_ def.RecommendationSource = (*Source)(nil)
	_ def.Asynchronous         = (*Source)(nil)
	_ def.Forgetter            = (*Source)(nil)
	_ def.Sizer                = (*Source)(nil)
)

// New builds the source's HTTP client from the configuration: the endpoints it may call, its
// timeout and, for https endpoints, an optional CA and client certificate (mTLS). Bad entries
// and files are an error naming the key.
//
// The client dials only through the guard (guard.go), uses no proxy (a proxy would be the
// address checked, not the recommender) and follows no redirect (one could lead anywhere).
func New(cfg configdef.ExternalRecommenderConfig) (*Source, error) {
	g, err := newGuard(cfg.AllowedEndpoints)
	if err != nil {
		return nil, &configdef.Error{Key: "autoscaling.workload.external_recommender.allowed_endpoints", Err: err}
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLS.CAFile != "" {
		pem, err := os.ReadFile(cfg.TLS.CAFile)
		if err != nil {
			return nil, &configdef.Error{Key: "autoscaling.workload.external_recommender.tls.ca_file", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &configdef.Error{Key: "autoscaling.workload.external_recommender.tls.ca_file", Err: errors.New("no PEM certificate in the file")}
		}
		tlsCfg.RootCAs = pool
	}
	if cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, &configdef.Error{Key: "autoscaling.workload.external_recommender.tls.cert_file", Err: err}
		}
		tlsCfg.Certificates = []tls.Certificate{cert}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	transport.MaxIdleConnsPerHost = 4
	transport.Proxy = nil
	transport.DialContext = g.dial(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second})
	client := &http.Client{Timeout: cfg.Timeout, Transport: transport, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		return fmt.Errorf("redirected to %s: redirects are not followed", redacted(req.URL))
	}}
	s := &Source{client: client, guard: g, cluster: cfg.ClusterName}
	s.calls = newCalls(cfg.MaxInFlight, cfg.MaxInFlightPerEndpoint, cfg.AnswerWait, s.call)
	return s, nil
}

// Subscribe implements def.Asynchronous.
func (s *Source) Subscribe(f func(namespace, name string)) func() { return s.calls.subscribe(f) }

// Forget implements def.Forgetter: the DPA's call is cancelled and its last answer dropped.
func (s *Source) Forget(namespace, name string) { s.calls.forget(namespace + "/" + name) }

// Sizes implements def.Sizer.
func (s *Source) Sizes() map[string]int {
	return s.calls.sizes()
}

// Close cancels the calls in flight, waits for them, and releases idle connections.
func (s *Source) Close() {
	s.calls.close()
	s.client.CloseIdleConnections()
}

// Name implements def.RecommendationSource.
func (s *Source) Name() string { return "external" }

// Priority implements def.RecommendationSource.
func (s *Source) Priority() int { return Priority }

// Applies implements def.RecommendationSource.
func (s *Source) Applies(dpa *v1alpha2.DatadogPodAutoscaler) bool {
	_, ok := dpa.Annotations[v1alpha2.CustomRecommenderAnnotation]
	return ok
}

// ParseAnnotation reads and checks a custom-recommender annotation value.
func ParseAnnotation(value string) (Annotation, error) {
	var a Annotation
	if err := json.Unmarshal([]byte(value), &a); err != nil {
		return a, fmt.Errorf("annotation %s: want {\"endpoint\": \"https://...\", \"settings\": {...}}: %w", v1alpha2.CustomRecommenderAnnotation, err)
	}
	u, err := url.Parse(a.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return a, fmt.Errorf("annotation %s: endpoint %q is not an http(s) URL", v1alpha2.CustomRecommenderAnnotation, a.Endpoint)
	}
	switch a.Protocol {
	case "":
		a.Protocol = ProtocolLazyscale
	case ProtocolLazyscale, ProtocolDatadog:
	default:
		return a, fmt.Errorf("annotation %s: protocol %q: want %q (the default) or %q", v1alpha2.CustomRecommenderAnnotation, a.Protocol, ProtocolLazyscale, ProtocolDatadog)
	}
	return a, nil
}

// Recommend implements def.RecommendationSource. The call runs outside the caller (see
// calls): Recommend returns its answer if it comes within the configured answer_wait, and a
// *def.Pending otherwise.
func (s *Source) Recommend(ctx context.Context, req def.Request) (*def.Recommendation, error) {
	dpa := req.Autoscaler
	ann, err := ParseAnnotation(dpa.Annotations[v1alpha2.CustomRecommenderAnnotation])
	if err != nil {
		return nil, err
	}
	if err := s.guard.check(ann.Endpoint); err != nil {
		return nil, fmt.Errorf("recommender: %w", err)
	}
	var payload any
	if ann.Protocol == ProtocolDatadog {
		if payload, err = datadogRequest(req, s.cluster, ann.Settings); err != nil {
			return nil, err
		}
	} else {
		payload = RecommendationRequest{
			Autoscaler:      AutoscalerRef{Namespace: dpa.Namespace, Name: dpa.Name, UID: string(dpa.UID)},
			Target:          dpa.Spec.TargetRef,
			Objectives:      v1alpha2.ObjectivesOf(&dpa.Spec), // the default when the spec has none
			Constraints:     dpa.Spec.Constraints,
			CurrentReplicas: req.CurrentReplicas,
			ReadyReplicas:   req.ReadyReplicas,
			Containers:      req.Containers,
			Settings:        ann.Settings,
		}
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode recommender request: %w", err)
	}
	if len(body) > maxRequest {
		return nil, fmt.Errorf("recommender %s: the request would be %d bytes, more than %d", ann.Endpoint, len(body), maxRequest)
	}
	u, _ := url.Parse(ann.Endpoint) // checked by ParseAnnotation
	return s.calls.ask(ctx, dpa.Namespace+"/"+dpa.Name, job{endpoint: ann.Endpoint, protocol: ann.Protocol, slot: u.Scheme + "://" + u.Host, body: body})
}

// call sends one request and reads its answer (calls runs it).
func (s *Source) call(ctx context.Context, j job) (*def.Recommendation, error) {
	data, err := s.post(ctx, j.endpoint, j.body)
	if err != nil {
		return nil, err
	}
	if j.protocol == ProtocolDatadog {
		rec, err := datadogRecommendation(data)
		if err != nil {
			return nil, fmt.Errorf("recommender %s: %w", j.endpoint, err)
		}
		return rec, nil
	}
	var out RecommendationResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("recommender %s: answer is not a recommendation: %w", j.endpoint, err)
	}
	if err := checkResponse(out); err != nil {
		return nil, fmt.Errorf("recommender %s: %w", j.endpoint, err)
	}
	rec := &def.Recommendation{Source: v1alpha2.DatadogPodAutoscalerAutoscalingValueSource, SourceName: "external",
		Timestamp: time.Now(), Replicas: out.Replicas, Containers: out.Containers}
	if out.Timestamp != nil {
		rec.Timestamp = *out.Timestamp
	}
	return rec, nil
}

// post sends one request and returns the body of a 200 answer, at most maxResponse bytes.
func (s *Source) post(ctx context.Context, endpoint string, body []byte) ([]byte, error) {
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("recommender %s: %w", endpoint, err)
	}
	httpReq.Header.Set("Content-Type", "application/json")
	httpReq.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(httpReq)
	if err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) {
			return nil, fmt.Errorf("recommender: %w", &RefusedError{Endpoint: endpoint, Reason: refused.Reason})
		}
		return nil, fmt.Errorf("recommender %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("recommender %s: read answer: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("recommender %s: HTTP %d: %s", endpoint, resp.StatusCode, snippet(data))
	}
	if len(data) > maxResponse {
		return nil, fmt.Errorf("recommender %s: answer larger than %d bytes", endpoint, maxResponse)
	}
	return data, nil
}

func checkResponse(r RecommendationResponse) error {
	if r.Replicas != nil && *r.Replicas < 0 {
		return fmt.Errorf("negative replicas %d", *r.Replicas)
	}
	for _, c := range r.Containers {
		if c.Name == "" {
			return errors.New("a container without a name")
		}
		for _, l := range []corev1.ResourceList{c.Requests, c.Limits} {
			for name, q := range l {
				if q.Sign() < 0 {
					return fmt.Errorf("container %q: negative %s", c.Name, name)
				}
			}
		}
	}
	return nil
}

// snippet is the start of an error body, for a condition message.
func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
