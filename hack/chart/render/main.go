// Command render writes the chart's defaults, rendered for the release lazyscale in the
// namespace lazyscale (which it creates), to stdout: deploy/lazyscale.yaml.
package main

import (
	"fmt"
	"os"

	"github.com/lazyscale/lazyscale/hack/chart"
)

func main() {
	m, err := chart.DeployManifest()
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	fmt.Print(m)
}
