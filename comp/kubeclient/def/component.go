// Package def defines the Kubernetes clients lazyscale uses. The clients are provided as
// their client-go interfaces so that components depend on what they call, not on a bundle.
package def

import (
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
)

// Clients are the API clients built from one rest.Config. All are safe for concurrent use.
// Every request carries the user agent lazyscale/<version>.
type Clients struct {
	// Config is the rest.Config the clients were built from (protobuf for built-in types).
	Config *rest.Config
	Kube   kubernetes.Interface
	// Dynamic serves custom resources (DPAs, profiles) as unstructured objects.
	Dynamic dynamic.Interface
	// Metadata lists and watches object metadata only: the cheap way to watch for labels.
	Metadata metadata.Interface
}
