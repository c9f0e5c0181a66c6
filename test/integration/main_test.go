package integration

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/lazyscale/lazyscale/test/controlplane"
	"github.com/lazyscale/lazyscale/test/testenv"
)

// cluster is the control plane that runs workloads (controller-manager, scheduler, three kwok
// nodes, metrics-server), started once for the tests that only need namespaces of their own.
// Tests that need a pristine or bare apiserver (dormancy, a missing CRD, the audit of every
// request) start their own with newEnv.
var cluster = &testenv.Shared{Options: controlplane.Options{InstallCRDs: true, Nodes: 3, MetricsServer: true}}

// TestMain stops the shared cluster, then checks that no goroutine remains: every in-process
// agent is stopped by its test's cleanup, and none of its goroutines, nor client-go's, may
// outlive it.
func TestMain(m *testing.M) {
	code := m.Run()
	cluster.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}
