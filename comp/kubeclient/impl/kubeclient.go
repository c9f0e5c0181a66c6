// Package impl builds the Kubernetes clients from a kubeconfig or the in-cluster config.
package impl

import (
	"errors"
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/core/version"
	"github.com/lazyscale/lazyscale/comp/kubeclient/def"
)

// Requires is what the kubeclient component needs.
type Requires struct {
	Config configdef.Component
}

// Provides is what the kubeclient component gives.
type Provides struct {
	Clients def.Clients
}

// NewComponent builds the clients. It does not contact the apiserver: an unreachable server
// shows up later as retried watch errors, not as a failed start.
func NewComponent(reqs Requires) (Provides, error) {
	kc := reqs.Config.Get().Kubernetes
	rc, err := RESTConfig(kc.Kubeconfig)
	if err != nil {
		return Provides{}, err
	}
	rc.QPS = float32(kc.QPS)
	rc.Burst = kc.Burst
	rc.UserAgent = version.UserAgent()

	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return Provides{}, fmt.Errorf("dynamic client: %w", err)
	}
	md, err := metadata.NewForConfig(rc)
	if err != nil {
		return Provides{}, fmt.Errorf("metadata client: %w", err)
	}
	typed := rest.CopyConfig(rc)
	typed.ContentType = "application/vnd.kubernetes.protobuf"
	typed.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	kube, err := kubernetes.NewForConfig(typed)
	if err != nil {
		return Provides{}, fmt.Errorf("clientset: %w", err)
	}
	return Provides{Clients: def.Clients{Config: rc, Kube: kube, Dynamic: dyn, Metadata: md}}, nil
}

// RESTConfig resolves where to connect: the given kubeconfig path, else the in-cluster
// service account, else $KUBECONFIG or ~/.kube/config.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
		return rc, nil
	}
	rc, err := rest.InClusterConfig()
	if err == nil {
		return rc, nil
	}
	if !errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	rc, err = loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("no kubeconfig given, not in a cluster, and $KUBECONFIG/~/.kube/config unusable: %w", err)
	}
	return rc, nil
}
