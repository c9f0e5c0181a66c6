package integration

import (
	"testing"

	"go.uber.org/goleak"
)

// Every in-process agent is stopped by its test's cleanup; after that none of its goroutines,
// nor client-go's, may remain.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
