// Package def defines lazyscale's admission webhooks as plugins: each webhook is provided into
// the "admission_webhooks" fx value group, and the admission server serves and registers
// whatever it finds there.
package def

import (
	"context"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// SkippedNamespaces are the namespaces the webhook never intercepts, whatever its registration
// says: the control plane's own (kube-system) and lazyscale's, so that a broken webhook cannot
// keep either from starting. Pods there are never patched.
func SkippedNamespaces(own string) []string { return []string{"kube-system", own} }

// Webhook is one mutating webhook. Handle is called concurrently, once per request.
type Webhook interface {
	// Name is short and stable ("autoscaling"); it names metrics and the configuration entry.
	Name() string
	// Path is the HTTP path the server routes to Handle ("/autoscaling").
	Path() string
	// Registration says what the apiserver should send to this webhook.
	Registration() Registration
	// Handle answers one review. body is the whole AdmissionReview as received; uid is its
	// request UID, already extracted. A webhook decodes body only when it needs the object.
	// It must answer within the apiserver's timeout and never panic.
	Handle(ctx context.Context, uid types.UID, body []byte) Response
}

// Registration is a webhook's entry of the MutatingWebhookConfiguration.
// Want says when a webhook's entry is wanted.
type Want interface {
	// Await blocks until the entry is wanted (ok) or ctx ends (not ok), and returns a channel
	// closed when it no longer is.
	Await(ctx context.Context) (unwanted <-chan struct{}, ok bool)
}

type Registration struct {
	Rules             []admissionregistrationv1.RuleWithOperations
	NamespaceSelector *metav1.LabelSelector
	ObjectSelector    *metav1.LabelSelector
	MatchConditions   []admissionregistrationv1.MatchCondition
	// TimeoutSeconds overrides admission.timeout_seconds when non-zero.
	TimeoutSeconds int32
	// Wanted, when non-nil, says when the webhook wants its entry under lazy registration (the
	// autoscaling webhook: while the gate is open). Nil means from startup, for good.
	Wanted Want
	// Scope, when non-nil, limits the entry to the namespaces it wants (kubernetes.io/metadata
	// .name In [...]) and, with match conditions, to its workloads' pods; with none wanted the
	// entry is left out. Nil: every namespace but the skipped ones.
	Scope *NamespaceScope
}

// Response is a webhook's answer.
type Response struct {
	Allowed bool
	// Patch is an RFC 6902 JSON Patch, nil for none.
	Patch []byte
	// Warnings are returned to the client that made the request (kubectl prints them).
	Warnings []string
	// Result explains a denial.
	Result *metav1.Status
	// Outcome labels the request in lazyscale_admission_webhook_requests_total{outcome}:
	// "patched", "unchanged", "skipped" (fast path), "error" (answered allowed after a failure);
	// its result label is success for the first three, error for the last.
	Outcome string
}

// Component is the admission server.
type Component interface {
	// Addr is the address the HTTPS server listens on, known once started.
	Addr() string
	// CABundle is the PEM CA that signs the serving certificate.
	CABundle() []byte
	// CertificateNotAfter is when the current serving certificate expires.
	CertificateNotAfter() time.Time
}

// Status is the "webhook" section of /status. The admission server fills what it owns; a
// webhook whose behaviour is wired late (the autoscaling one) fills PatcherInstalled.
type Status struct {
	// Enabled: the server serves (admission.enabled and at least one webhook).
	Enabled bool `json:"enabled"`
	// Register is admission.register: lazy, always or never.
	Register string `json:"register"`
	// Registered says, per webhook, whether this replica has its entry applied.
	Registered map[string]bool `json:"registered,omitempty"`
	// PatcherInstalled: the autoscaling webhook patches pods (else it admits them unchanged
	// without decoding them).
	PatcherInstalled bool `json:"patcher_installed"`
	// Scope is the autoscaling entry's: "cluster", or the namespaces it is to cover (those
	// holding an active DPA) and how many of them the applied entry covers (on the leader).
	Scope       *ScopeStatus       `json:"scope,omitempty"`
	Certificate *CertificateStatus `json:"certificate,omitempty"`
}

// ScopeStatus is the autoscaling entry's scope.
type ScopeStatus struct {
	ClusterWide bool `json:"cluster_wide"`
	// Namespaces are the namespaces of the workloads to cover.
	Namespaces []string `json:"namespaces,omitempty"`
	// Workloads is how many workloads are to be covered.
	Workloads int `json:"workloads,omitempty"`
	// Covered is how many namespaces the applied entry covers (on the leader).
	Covered int `json:"covered"`
	// MatchesWorkloads: the applied entry's match conditions send only those workloads' pods
	// (admission.scope workloads, up to admission.scope_workloads_max of them).
	MatchesWorkloads bool `json:"matches_workloads,omitempty"`
}

// CertificateStatus is the serving certificate.
type CertificateStatus struct {
	Mode      string    `json:"mode"`
	NotAfter  time.Time `json:"not_after"`
	ExpiresIn string    `json:"expires_in"`
}
