// Package def defines the status server's contract: the typed /status document, the sections
// components fill in it, and their readiness checks. Components provide sections and checks
// into fx value groups; the server renders whatever it gets. The same Document type is what
// `lazyscale status` and the tests decode, so the schema is written once.
package def

import (
	"net/http"

	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
	autoscalingdef "github.com/lazyscale/lazyscale/comp/autoscaling/def"
	gatedef "github.com/lazyscale/lazyscale/comp/autoscalinggate/def"
	leaderdef "github.com/lazyscale/lazyscale/comp/leaderelection/def"
	wmdef "github.com/lazyscale/lazyscale/comp/workloadmeta/def"
)

// Document is the /status JSON document. A section a binary does not include is absent.
type Document struct {
	Version       string                     `json:"version"`
	Gate          *gatedef.Status            `json:"gate,omitempty"`
	PodCollection *wmdef.PodCollectionStatus `json:"pod_collection,omitempty"`
	Webhook       *admissiondef.Status       `json:"webhook,omitempty"`
	Autoscaling   *autoscalingdef.Status     `json:"autoscaling,omitempty"`
	// Autoscalers is how many DPAs the stack follows (0 before it runs).
	Autoscalers *int              `json:"autoscalers,omitempty"`
	Leader      *leaderdef.Status `json:"leader,omitempty"`
}

// WebhookSection returns the "webhook" section, created when absent: the admission server and
// the autoscaling webhook each fill their own fields of it.
func (d *Document) WebhookSection() *admissiondef.Status {
	if d.Webhook == nil {
		d.Webhook = &admissiondef.Status{}
	}
	return d.Webhook
}

// DebugHandler is a debugging endpoint a component serves on the status address, under
// /debug/, only while status.pprof is on (like the profiles): what it shows is for a person
// investigating, not for monitoring.
type DebugHandler struct {
	// Path is the endpoint's path, e.g. /debug/pods.
	Path    string
	Handler http.Handler
}

// AutoscalersReport reads what the autoscaling stack holds of the DPAs, for the /ui page. It
// must not block, and starts nothing: before the stack runs it returns an empty report.
type AutoscalersReport func() autoscalingdef.Report

// Section fills its part of the document.
type Section struct {
	// Name names the section in logs ("gate").
	Name string
	// Fill sets the section's fields of doc. It is called on every request, from any
	// goroutine, and must not block. Two sections may share a part of the document (the
	// admission server and the autoscaling webhook both fill "webhook"): each creates it when
	// nil (WebhookSection) and sets only its own fields.
	Fill func(doc *Document)
}

// Check is one readiness check of /readyz.
type Check struct {
	Name string
	// Ready returns nil when the component is ready; it must not block.
	Ready func() error
}

// Component is the status HTTP server.
type Component interface {
	// Addr is the address the server listens on, known once the app has started.
	Addr() string
}
