// Package fx provides the config component to an fx application. The binary supplies
// def.Params.
package fx

import (
	"go.uber.org/fx"

	"github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/core/config/impl"
)

// Module provides def.Component from def.Params.
func Module() fx.Option {
	return fx.Module("config", fx.Provide(newComponent))
}

type in struct {
	fx.In
	Params def.Params
}

type out struct {
	fx.Out
	Comp def.Component
}

func newComponent(i in) (out, error) {
	p, err := impl.NewComponent(impl.Requires{Params: i.Params})
	return out{Comp: p.Comp}, err
}
