package e2e

import (
	"testing"

	"go.uber.org/goleak"
)

// The control plane's process watchers must end with it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
