// Command embed is a host agent that embeds lazyscale: it has its own zap logger, its own
// Kubernetes clients and its own Prometheus registry, served on its own metrics port, and it
// includes lazyscale's workload autoscaling feature alone (lazyscale.Feature), with
// lazyscale's config component reading lazyscale's own keys (LAZYSCALE_* and --config).
//
//	go run ./examples/embed --kubeconfig ~/.kube/config --metrics-addr 127.0.0.1:9090
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/lazyscale/lazyscale"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	configfx "github.com/lazyscale/lazyscale/comp/core/config/fx"
	"github.com/lazyscale/lazyscale/fxutil"
)

// host is what the host agent has before lazyscale: its own logger, clients and registry.
type host struct {
	log      *zap.Logger
	rest     *rest.Config
	kube     kubernetes.Interface
	dynamic  dynamic.Interface
	metadata metadata.Interface
	registry *prometheus.Registry
}

// lazyscaleOptions composes the whole lazyscale stack into the host's fx graph: the host's
// own logger, clients and registry, lazyscale's config component, and the feature.
func lazyscaleOptions(h host, params configdef.Params) fx.Option {
	// embed:begin (the fx options a host writes; counted in the docs)
	return fx.Options(
		fx.Supply(h.log, h.rest, params),
		fx.Supply(fx.Annotate(h.kube, fx.As(new(kubernetes.Interface)))),
		fx.Supply(fx.Annotate(h.dynamic, fx.As(new(dynamic.Interface)))),
		fx.Supply(fx.Annotate(h.metadata, fx.As(new(metadata.Interface)))),
		fx.Supply(fx.Annotate(h.registry, fx.As(new(prometheus.Registerer)), fx.As(new(prometheus.Gatherer)))),
		configfx.Module(),
		lazyscale.Feature(),
	)
	// embed:end
}

// newHost builds the host's own parts from a kubeconfig.
func newHost(log *zap.Logger, rc *rest.Config) (host, error) {
	h := host{log: log, rest: rc, registry: prometheus.NewRegistry()}
	h.registry.MustRegister(collectors.NewGoCollector())
	var err error
	if h.kube, err = kubernetes.NewForConfig(rc); err != nil {
		return host{}, err
	}
	if h.dynamic, err = dynamic.NewForConfig(rc); err != nil {
		return host{}, err
	}
	if h.metadata, err = metadata.NewForConfig(rc); err != nil {
		return host{}, err
	}
	return h, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run() error {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	metricsAddr := flag.String("metrics-addr", "127.0.0.1:9090", "the host's own metrics address")
	flag.Parse()
	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	rc, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	rc.UserAgent = "embed-host"
	h, err := newHost(log.Named("host"), rc)
	if err != nil {
		return err
	}
	// The host serves its registry, lazyscale's metrics included, on its own port.
	metrics := &http.Server{Addr: *metricsAddr, Handler: promhttp.HandlerFor(h.registry, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := metrics.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("host metrics server", zap.Error(err))
		}
	}()
	defer func() { _ = metrics.Close(); <-served }()
	// lazyscale's own status server would take 127.0.0.1:5080 by default: a host may move it.
	params := configdef.Params{File: os.Getenv("LAZYSCALE_CONFIG")}
	return fxutil.Run(fx.NopLogger, lazyscaleOptions(h, params))
}
