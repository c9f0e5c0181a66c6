package fxutiltest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/fx"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestComponent(t *testing.T) {
	got := Component[int](t, fx.NopLogger, fx.Supply(42))
	assert.Equal(t, 42, got)
}
