package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	configimpl "github.com/lazyscale/lazyscale/comp/core/config/impl"
)

// newUICommand serves the agent's /ui page on a local address for a browser, adding the bearer
// token the status port wants (status.auth kubernetes), which a browser cannot send. Only the
// page goes through: /metrics and /status stay behind the port's own door.
func newUICommand(g *globalFlags) *cobra.Command {
	var listen, tokenFile string
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Open the agent's /ui page in a browser: serves it on --listen with your token (in a cluster: kubectl port-forward first)",
		Args:  cobra.NoArgs,
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:5081", "where to serve the page (keep it on loopback: it carries your token)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "a file holding the bearer token to send (default: the token of your Kubernetes credentials, if they have one)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := configimpl.Load(g.configFile, os.Environ(), g.overrides(cmd))
		if err != nil {
			return err
		}
		addr := cfg.Status.Addr
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		token, err := uiToken(tokenFile, cfg)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("%w: --listen %s: %v", errUsage, listen, err)
		}
		srv := &http.Server{Handler: uiProxy(addr, token), ReadHeaderTimeout: 5 * time.Second}
		fmt.Fprintf(cmd.OutOrStdout(), "lazyscale's page (from the agent at %s): http://%s/ui\nCtrl-C to stop.\n", addr, ln.Addr())
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		go func() {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	return cmd
}

// uiToken is the token to send: --token-file's, else the credentials' own when the port wants
// one. Without either, the page is asked for without a token (status.auth none).
func uiToken(tokenFile string, cfg configdef.Config) (string, error) {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	token, err := statusToken(cfg.Kubernetes.Kubeconfig)
	if err != nil && cfg.Status.Auth == configdef.StatusAuthKubernetes {
		return "", fmt.Errorf("the status port wants a token (status.auth kubernetes): %w; pass one with --token-file (kubectl create token <a ServiceAccount bound to lazyscale-metrics-reader>)", err)
	}
	return token, nil
}

// uiProxy forwards GET /ui to the agent at addr with token; / goes to /ui; anything else is
// not found.
func uiProxy(addr, token string) http.Handler {
	target := &url.URL{Scheme: "http", Host: addr}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Del("Authorization")
			r.Out.Header.Del("Cookie")
			if token != "" {
				r.Out.Header.Set("Authorization", "Bearer "+token)
			}
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, fmt.Sprintf("the agent's status port at %s does not answer (is it running? in a cluster, is kubectl port-forward on?): %v", addr, err), http.StatusBadGateway)
		},
	}
	mux := http.NewServeMux()
	mux.Handle("GET /ui", proxy)
	mux.Handle("GET /{$}", http.RedirectHandler("/ui", http.StatusFound))
	return mux
}
