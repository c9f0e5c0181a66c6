// Package fx provides the Kubernetes clients, each as its own client-go interface.
package fx

import (
	"go.uber.org/fx"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/kubeclient/def"
	"github.com/lazyscale/lazyscale/comp/kubeclient/impl"
)

// Module provides *rest.Config, kubernetes.Interface, dynamic.Interface and metadata.Interface.
func Module() fx.Option {
	return fx.Module("kubeclient", fx.Provide(newClients))
}

type out struct {
	fx.Out
	Config   *rest.Config
	Kube     kubernetes.Interface
	Dynamic  dynamic.Interface
	Metadata metadata.Interface
}

func newClients(cfg configdef.Component) (out, error) {
	p, err := impl.NewComponent(impl.Requires{Config: cfg})
	if err != nil {
		return out{}, err
	}
	return fromClients(p.Clients), nil
}

func fromClients(c def.Clients) out {
	return out{Config: c.Config, Kube: c.Kube, Dynamic: c.Dynamic, Metadata: c.Metadata}
}
