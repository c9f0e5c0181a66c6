// Command render renders the chart with the Helm SDK, as `helm template` would. With no
// flags it writes deploy/lazyscale.yaml (the chart's defaults, `make generate`); with
// -values, -name or -namespace it renders a release of your own:
//
//	go run ./hack/chart/render -name lazyscale -namespace lazyscale -values my-values.yaml | kubectl apply -f -
package main

import (
	"flag"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/lazyscale/lazyscale/hack/chart"
)

func main() {
	rule := flag.Bool("prometheusrule", false, "write deploy/monitoring/prometheusrule.yaml's content (make generate)")
	valuesFile := flag.String("values", "", "a values file (YAML), over the chart's defaults")
	name := flag.String("name", "", "release name (default lazyscale)")
	namespace := flag.String("namespace", "", "release namespace (default lazyscale)")
	flag.Parse()
	if *rule {
		m, err := chart.RuleManifest()
		if err != nil {
			fmt.Fprintln(os.Stderr, "render:", err)
			os.Exit(1)
		}
		fmt.Print(m)
		return
	}
	if err := run(*valuesFile, *name, *namespace); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(valuesFile, name, namespace string) error {
	if valuesFile == "" && name == "" && namespace == "" {
		m, err := chart.DeployManifest()
		if err != nil {
			return err
		}
		fmt.Print(m)
		return nil
	}
	values := map[string]any{}
	if valuesFile != "" {
		b, err := os.ReadFile(valuesFile)
		if err != nil {
			return err
		}
		if err := yaml.Unmarshal(b, &values); err != nil {
			return fmt.Errorf("%s: %w", valuesFile, err)
		}
	}
	if name == "" {
		name = "lazyscale"
	}
	if namespace == "" {
		namespace = "lazyscale"
	}
	r, err := chart.Render(name, namespace, values)
	if err != nil {
		return err
	}
	fmt.Print(r.YAML())
	return nil
}
