package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/api/datadoghq/v1alpha2"
	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// The floor modes measure what the apiserver itself charges for a mutating webhook, whoever
// answers it: a webhook server of a few lines in this process, registered exactly like
// lazyscale's entry, that answers every review from a constant without looking at the pod.
// "floor-call" answers "allowed, no patch"; "floor-patch" answers with the one-operation
// patch lazyscale's owner patcher produces for these pods (add the autoscaler-id annotation).
// Their ratios to "disabled" are the best any webhook can reach on this machine.
const floorWebhookName = "lazyscale-bench-floor"

// floorPatch is the JSON Patch the owner patcher returns for a pod of svc-000 in team-0; the
// bench pods always have annotations, so adding one key is valid.
var floorPatch = []byte(`[{"op":"add","path":"/metadata/annotations/` +
	strings.ReplaceAll(v1alpha2.AutoscalerIDAnnotation, "/", "~1") + `","value":"team-0/svc-000"}]`)

// floorWebhook is the constant-answer webhook server.
type floorWebhook struct {
	patch bool
	calls atomic.Int64
	// capture, when set, receives the first review body (see -capture-review).
	capture string
}

var captureReview = flag.String("capture-review", "", "write the first AdmissionReview the apiserver sends to the floor webhook into this file (a realistic review for in-process benchmarks)")

func (f *floorWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.calls.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if n == 1 && f.capture != "" {
		_ = os.WriteFile(f.capture, body, 0o644)
	}
	var review struct {
		Request struct {
			UID string `json:"uid"`
		} `json:"request"`
	}
	if err := json.Unmarshal(body, &review); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp := map[string]any{"uid": review.Request.UID, "allowed": true}
	if f.patch {
		resp["patchType"] = "JSONPatch"
		resp["patch"] = floorPatch // []byte marshals as base64, as the API wants
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
}

// measureFloor registers the floor webhook, times pod creation through the apiserver, and
// removes the registration again.
func measureFloor(ctx context.Context, cp *controlplane.ControlPlane, kube kubernetes.Interface, mode string, n int) (Result, error) {
	r := Result{Mode: mode, Pods: n}
	caPEM, certPEM, keyPEM, err := testenv.ServingCert()
	if err != nil {
		return r, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return r, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r, err
	}
	hook := &floorWebhook{patch: mode == "floor-patch", capture: *captureReview}
	srv := &http.Server{Handler: hook, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	defer func() {
		_ = srv.Shutdown(context.Background())
		<-served
	}()

	url := "https://" + ln.Addr().String() + "/mutate"
	ignore, none, ifNeeded, timeout := admissionregistrationv1.Ignore, admissionregistrationv1.SideEffectClassNone,
		admissionregistrationv1.IfNeededReinvocationPolicy, int32(5)
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: floorWebhookName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "floor.bench.lazyscale.io",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
			Rules:                   []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			FailurePolicy:           &ignore,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      &ifNeeded,
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "lazyscale"}}}},
		}},
	}
	if _, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		return r, err
	}
	defer func() {
		_ = kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), floorWebhookName, metav1.DeleteOptions{})
	}()
	// The apiserver picks the configuration up asynchronously: probe with server-side dry runs
	// until the webhook is called.
	probe := benchPod(0, 10)
	probe.Name = "floor-probe"
	if err := waitUntil(time.Minute, func() bool {
		_, err := kube.CoreV1().Pods(probe.Namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil && hook.calls.Load() > 0
	}); err != nil {
		return r, fmt.Errorf("floor webhook never called: %w", err)
	}
	r.PodCreate, r.PodsPatched, err = podCreateLatency(ctx, cp, fmt.Sprintf("%s-%d", mode, n), 300)
	if err == nil && mode == "floor-patch" && r.PodsPatched != r.PodCreate.Count {
		err = fmt.Errorf("floor webhook patched %d of %d pods", r.PodsPatched, r.PodCreate.Count)
	}
	fmt.Fprintf(os.Stderr, "%-17s webhook calls=%d\n", mode, hook.calls.Load())
	return r, err
}
