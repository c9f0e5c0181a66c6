package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/klog/v2"

	"github.com/lazyscale/lazyscale"
	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	configimpl "github.com/lazyscale/lazyscale/comp/core/config/impl"
	logfx "github.com/lazyscale/lazyscale/comp/core/log/fx"
	logimpl "github.com/lazyscale/lazyscale/comp/core/log/impl"
	"github.com/lazyscale/lazyscale/comp/core/version"
	kubeclientimpl "github.com/lazyscale/lazyscale/comp/kubeclient/impl"
	statusdef "github.com/lazyscale/lazyscale/comp/status/def"
	"github.com/lazyscale/lazyscale/fxutil"
)

var errUsage = errors.New("usage")

type globalFlags struct {
	configFile string
	kubeconfig string
	statusAddr string
	logLevel   string
	logFormat  string
}

// overrides maps the flags that were set to their config keys.
func (g *globalFlags) overrides(cmd *cobra.Command) map[string]string {
	out := map[string]string{}
	for flag, key := range map[string]string{
		"kubeconfig":  "kubernetes.kubeconfig",
		"status-addr": "status.addr",
		"log-level":   "log.level",
		"log-format":  "log.format",
	} {
		if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
			out[key] = f.Value.String()
		}
	}
	return out
}

func newRootCommand() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "lazyscale",
		Short:         "Workload autoscaling that costs nothing until it is used",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return runAgent(cmd, g) },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %v", errUsage, err) })
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", "YAML configuration file")
	pf.StringVar(&g.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, else $KUBECONFIG)")
	pf.StringVar(&g.statusAddr, "status-addr", "", "status server address (default 127.0.0.1:5080 outside a cluster)")
	pf.StringVar(&g.logLevel, "log-level", "", "debug, info, warn or error (default info)")
	pf.StringVar(&g.logFormat, "log-format", "", "console or json (default console)")

	root.AddCommand(
		&cobra.Command{
			Use:   "run",
			Short: "Run the agent (the default)",
			Args:  cobra.NoArgs,
			RunE:  func(cmd *cobra.Command, _ []string) error { return runAgent(cmd, g) },
		},
		newStatusCommand(g),
		newUICommand(g),
		newVersionCommand(),
	)
	return root
}

// outputFlag adds -o/--output (json, or nothing for text) to cmd; the func it returns says
// whether JSON was asked for, or that the value is not known.
func outputFlag(cmd *cobra.Command, what string) func() (bool, error) {
	var output string
	cmd.Flags().StringVarP(&output, "output", "o", "", "json: "+what+" as JSON")
	return func() (bool, error) {
		switch output {
		case "":
			return false, nil
		case "json":
			return true, nil
		}
		return false, fmt.Errorf("%w: -o %q: want json (or nothing, for text)", errUsage, output)
	}
}

func newStatusCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the status of a running agent (in a cluster: kubectl exec deploy/lazyscale -- /lazyscale status)",
		Args:  cobra.NoArgs,
	}
	asJSON := outputFlag(cmd, "the /status document")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		j, err := asJSON()
		if err != nil {
			return err
		}
		return printStatus(cmd, g, j)
	}
	return cmd
}

func newVersionCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version and client-go version",
		Args:  cobra.NoArgs,
	}
	asJSON := outputFlag(cmd, "the version")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		j, err := asJSON()
		if err != nil {
			return err
		}
		if j {
			return json.NewEncoder(cmd.OutOrStdout()).Encode(version.Get())
		}
		fmt.Fprintln(cmd.OutOrStdout(), version.Get())
		return nil
	}
	return cmd
}

// AgentOptions is everything cmd/lazyscale runs: the bundle, its parameters and the binary's
// own wiring. Tests validate it with fx.ValidateApp.
func AgentOptions(params configdef.Params) fx.Option {
	return fx.Options(
		fx.Supply(params),
		lazyscale.Bundle(),
		logfx.FxEvents(),
		// client-go logs through klog; send it to the agent's logger, once per process.
		fx.Invoke(func(l *zap.Logger) { klog.SetLogger(logimpl.ClientGo(l.Named("client-go"))) }),
	)
}

func runAgent(cmd *cobra.Command, g *globalFlags) error {
	params := configdef.Params{File: g.configFile, Overrides: g.overrides(cmd)}
	// Validate before fx so that a bad key is reported plainly, with exit code 2.
	if _, err := configimpl.Load(params.File, os.Environ(), params.Overrides); err != nil {
		return err
	}
	return fxutil.Run(AgentOptions(params))
}

// statusToken is the bearer token of the Kubernetes credentials the agent would use.
func statusToken(kubeconfig string) (string, error) {
	rc, err := kubeclientimpl.RESTConfig(kubeconfig)
	if err != nil {
		return "", err
	}
	if rc.BearerToken != "" {
		return rc.BearerToken, nil
	}
	if rc.BearerTokenFile != "" {
		b, err := os.ReadFile(rc.BearerTokenFile)
		if err != nil {
			return "", fmt.Errorf("read the token: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", errors.New("the Kubernetes credentials have no bearer token (a client certificate cannot be passed on to the status port)")
}

// getStatusBody GETs /status, with the token of the credentials in kubeconfig if withToken.
func getStatusBody(ctx context.Context, addr string, withToken bool, kubeconfig string) (code int, status string, body []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return 0, "", nil, err
	}
	if withToken {
		token, err := statusToken(kubeconfig)
		if err != nil {
			return 0, "", nil, fmt.Errorf("the status port wants a token (status.auth kubernetes): %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", nil, fmt.Errorf("is the agent running? %w", err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, "", nil, fmt.Errorf("read status: %w", err)
	}
	return resp.StatusCode, resp.Status, body, nil
}

func printStatus(cmd *cobra.Command, g *globalFlags, asJSON bool) error {
	params := configdef.Params{File: g.configFile, Overrides: g.overrides(cmd)}
	cfg, err := configimpl.Load(params.File, os.Environ(), params.Overrides)
	if err != nil {
		return err
	}
	addr := cfg.Status.Addr
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
	defer cancel()
	// With status.auth kubernetes the agent asks the apiserver about the caller: the request
	// carries the token of the agent's own credentials (in a pod, its ServiceAccount's, which
	// the chart lets read /status). A 401 to a request without one (this command was run
	// without the agent's config, as `kubectl exec ... lazyscale status` is) is tried again
	// with it.
	withToken := cfg.Status.Auth == configdef.StatusAuthKubernetes
	code, status, body, err := getStatusBody(ctx, addr, withToken, cfg.Kubernetes.Kubeconfig)
	if err == nil && code == http.StatusUnauthorized && !withToken {
		code, status, body, err = getStatusBody(ctx, addr, true, cfg.Kubernetes.Kubeconfig)
	}
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("status server answered %s: %s", status, strings.TrimSpace(string(body)))
	}
	var doc statusdef.Document
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("decode status: %w", err)
	}
	if asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	return printDocument(doc, cmd.OutOrStdout(), addr)
}
