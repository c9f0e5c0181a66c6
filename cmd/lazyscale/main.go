// Command lazyscale is the lazyscale agent: workload autoscaling that stays dormant, and
// costs nothing, until the first DatadogPodAutoscaler appears.
package main

import (
	"errors"
	"fmt"
	"os"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
)

// Exit codes.
const (
	exitError  = 1
	exitConfig = 2
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := newRootCommand()
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, "lazyscale:", err)
	var cfgErr *configdef.Error
	if errors.As(err, &cfgErr) || errors.Is(err, errUsage) {
		return exitConfig
	}
	return exitError
}
