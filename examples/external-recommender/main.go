// Command external-recommender is an example external recommender for lazyscale: it answers
// every DatadogPodAutoscaler with per-container requests scaled from the current ones by a
// factor taken from the DPA's settings, and a replica count within its constraints.
//
//	go run ./examples/external-recommender -addr :8080
//
// and on a DPA:
//
//	autoscaling.datadoghq.com/custom-recommender: '{"endpoint": "http://recommender.shop.svc:8080/recommend", "settings": {"factor": 1.5}}'
//
// The protocol is in docs/external-recommender.md.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"math"
	"net/http"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/lazyscale/lazyscale/comp/autoscaling/def"
	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/external"
)

// settings is what this recommender reads from the annotation's "settings".
type settings struct {
	// Factor multiplies the current requests (default 1.2).
	Factor float64 `json:"factor"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /recommend", recommend)
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("external recommender listening on %s", *addr)
	log.Fatal(srv.ListenAndServe())
}

func recommend(w http.ResponseWriter, r *http.Request) {
	var req external.RecommendationRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, "not a recommendation request: "+err.Error(), http.StatusBadRequest)
		return
	}
	s := settings{Factor: 1.2}
	if len(req.Settings) > 0 {
		if err := json.Unmarshal(req.Settings, &s); err != nil || s.Factor <= 0 {
			http.Error(w, "settings: want {\"factor\": <positive number>}", http.StatusBadRequest)
			return
		}
	}
	now := time.Now().UTC()
	resp := external.RecommendationResponse{Timestamp: &now}
	for _, c := range req.Containers {
		out := def.ContainerResources{Name: c.Name, Requests: corev1.ResourceList{}}
		for name, q := range c.Requests {
			scaled := int64(math.Ceil(float64(q.MilliValue()) * s.Factor))
			out.Requests[name] = *resource.NewMilliQuantity(scaled, q.Format)
		}
		if len(out.Requests) > 0 {
			resp.Containers = append(resp.Containers, out)
		}
	}
	replicas := max(req.CurrentReplicas, 1)
	if c := req.Constraints; c != nil {
		if c.MinReplicas != nil {
			replicas = max(replicas, *c.MinReplicas)
		}
		if c.MaxReplicas != nil {
			replicas = min(replicas, *c.MaxReplicas)
		}
	}
	resp.Replicas = &replicas
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(resp); err != nil {
		log.Printf("answer %s/%s: %v", req.Autoscaler.Namespace, req.Autoscaler.Name, err)
	}
	log.Printf("recommended for %s/%s: %d containers, %d replicas", req.Autoscaler.Namespace, req.Autoscaler.Name, len(resp.Containers), replicas)
}
