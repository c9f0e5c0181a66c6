// Package fxutiltest builds lazyscale's fx modules under fxtest. It imports testing, so only
// tests import it; the binaries use fxutil.
package fxutiltest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
)

// Test builds opts under fxtest, starts the app, returns the T it provides and registers a
// cleanup that stops the app. A construction or start error fails the test at once.
func Test[T any](t testing.TB, opts ...fx.Option) T {
	t.Helper()
	var out T
	app := fxtest.New(t, append(opts, fx.Populate(&out))...)
	app.RequireStart()
	t.Cleanup(app.RequireStop)
	return out
}

// Validate fails the test when fx cannot build the graph of opts with a T in it: a missing
// or doubled provider, a cycle. It runs no constructor.
func Validate[T any](t testing.TB, opts ...fx.Option) {
	t.Helper()
	var out T
	require.NoError(t, fx.ValidateApp(append(opts, fx.Populate(&out))...), "fx graph")
}

// Component is what a component's own fx test does: Validate the module with its
// dependencies, then Test it (built, started, stopped at cleanup).
func Component[T any](t testing.TB, opts ...fx.Option) T {
	t.Helper()
	Validate[T](t, opts...)
	return Test[T](t, opts...)
}

// WaitFor bounds the waits of component tests.
const WaitFor = 30 * time.Second
