// Command datadog-recommender is an example external recommender that speaks the Datadog
// Cluster Agent's protocol (the JSON form of WorkloadRecommendationRequest and
// WorkloadRecommendationReply): it answers a replica count, the "replicas" setting when the
// DPA gives one, else the workload's desired count, within the DPA's constraints.
//
//	go run ./examples/datadog-recommender -addr :8080
//
// and on a DPA:
//
//	autoscaling.datadoghq.com/custom-recommender: '{"endpoint": "http://recommender.shop.svc:8080/recommend", "protocol": "datadog", "settings": {"replicas": "4"}}'
//
// The protocol is in docs/external-recommender.md.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"strconv"
	"time"

	"github.com/lazyscale/lazyscale/comp/autoscaling/recommenders/external"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "listen address")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /recommend", recommend)
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("datadog-protocol recommender listening on %s", *addr)
	log.Fatal(srv.ListenAndServe())
}

// reply is what this recommender answers: a WorkloadRecommendationReply, or its error.
type reply struct {
	Error          *replyError `json:"error,omitempty"`
	Timestamp      *time.Time  `json:"timestamp,omitempty"`
	TargetReplicas int32       `json:"targetReplicas"`
	Reason         string      `json:"reason,omitempty"`
}

type replyError struct {
	Code    int32  `json:"code"`
	Message string `json:"message"`
}

func recommend(w http.ResponseWriter, r *http.Request) {
	var req external.DatadogRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, "not a WorkloadRecommendationRequest: "+err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now().UTC()
	out := reply{Timestamp: &now, TargetReplicas: max(req.State.DesiredReplicas, 1), Reason: "the desired count, within the constraints"}
	if raw, ok := req.Settings["replicas"]; ok {
		var s string
		n, err := 0, json.Unmarshal(raw, &s) // the Cluster Agent sends settings as strings
		if err == nil {
			n, err = strconv.Atoi(s)
		}
		if err != nil || n < 0 {
			out = reply{Error: &replyError{Code: 3, Message: `setting "replicas": want a count, as a string`}}
			writeReply(w, req, out)
			return
		}
		out.TargetReplicas, out.Reason = int32(n), `the "replicas" setting, within the constraints`
	}
	if c := req.Constraints; c.MinReplicas > 0 {
		out.TargetReplicas = max(out.TargetReplicas, c.MinReplicas)
	}
	if c := req.Constraints; c.MaxReplicas > 0 {
		out.TargetReplicas = min(out.TargetReplicas, c.MaxReplicas)
	}
	writeReply(w, req, out)
}

func writeReply(w http.ResponseWriter, req external.DatadogRequest, out reply) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(out); err != nil {
		log.Printf("answer %s/%s: %v", req.TargetRef.Namespace, req.TargetRef.Name, err)
	}
	log.Printf("recommended for %s/%s %s: %d replicas", req.TargetRef.Namespace, req.TargetRef.Kind, req.TargetRef.Name, out.TargetReplicas)
}
