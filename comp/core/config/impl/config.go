// Package impl loads and validates lazyscale's configuration.
package impl

import (
	"fmt"
	"os"

	"github.com/lazyscale/lazyscale/comp/core/config/def"
)

// Requires is what the config component needs.
type Requires struct {
	Params def.Params
}

// Provides is what the config component gives.
type Provides struct {
	Comp def.Component
}

type config struct {
	cfg def.Config
}

var _ def.Component = (*config)(nil)

func (c *config) Get() def.Config { return c.cfg }

// NewComponent reads defaults, then the file, then the environment, then the overrides, and
// validates the result. Every error is a *def.Error naming the key.
func NewComponent(reqs Requires) (Provides, error) {
	environ := reqs.Params.Environ
	if environ == nil {
		environ = os.Environ()
	}
	cfg, err := Load(reqs.Params.File, environ, reqs.Params.Overrides)
	if err != nil {
		return Provides{}, err
	}
	return Provides{Comp: &config{cfg: cfg}}, nil
}

// Load builds a validated Config from its sources; see the def package for the precedence.
func Load(file string, environ []string, overrides map[string]string) (def.Config, error) {
	cfg := def.Defaults()
	fields := leafFields(&cfg)

	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return def.Config{}, &def.Error{Key: "config", Source: "flag", Err: fmt.Errorf("read config file: %w", err)}
		}
		values, err := flattenYAML(raw)
		if err != nil {
			return def.Config{}, err
		}
		if err := apply(fields, values, "file"); err != nil {
			return def.Config{}, err
		}
	}
	if err := apply(fields, fromEnv(environ), "env"); err != nil {
		return def.Config{}, err
	}
	if err := apply(fields, overrides, "flag"); err != nil {
		return def.Config{}, err
	}
	resolve(&cfg, environ)
	if err := validate(cfg); err != nil {
		return def.Config{}, err
	}
	return cfg, nil
}

// resolve fills values whose default depends on where the agent runs.
func resolve(cfg *def.Config, environ []string) {
	if cfg.Status.Addr == "" {
		cfg.Status.Addr = "127.0.0.1:5080"
		if inCluster(environ) && cfg.Kubernetes.Kubeconfig == "" {
			cfg.Status.Addr = ":5080"
		}
	}
}

func inCluster(environ []string) bool {
	for _, kv := range environ {
		if len(kv) > len("KUBERNETES_SERVICE_HOST=") && kv[:len("KUBERNETES_SERVICE_HOST=")] == "KUBERNETES_SERVICE_HOST=" {
			return true
		}
	}
	return false
}
