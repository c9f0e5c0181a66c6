// Command reference is the bench harness's yardstick: the pattern common to autoscalers, a
// plain client-go SharedInformer holding every full *corev1.Pod, with nothing of lazyscale. It
// serves /metrics (Go runtime and process) and /debug/pprof on -addr like the agent, and
// /synced once its cache has synced.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig")
	addr := flag.String("addr", "127.0.0.1:5081", "metrics address")
	flag.Parse()
	if err := run(*kubeconfig, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "reference:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	cfg.UserAgent = "reference-informer/1"
	cfg.QPS, cfg.Burst = 20, 40
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(kube, 0)
	pods := factory.Core().V1().Pods().Informer()
	var synced atomic.Bool

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "reference_pods", Help: "Pods in the informer cache."},
			func() float64 { return float64(len(pods.GetStore().ListKeys())) }))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/synced", func(w http.ResponseWriter, _ *http.Request) {
		if !synced.Load() {
			http.Error(w, "syncing", http.StatusServiceUnavailable)
		}
	})
	srv := &http.Server{Addr: addr, Handler: mux}
	go func() { _ = srv.ListenAndServe() }()
	defer srv.Close()

	factory.Start(ctx.Done())
	if cache.WaitForCacheSync(ctx.Done(), pods.HasSynced) {
		synced.Store(true)
	}
	<-ctx.Done()
	factory.Shutdown()
	return nil
}
