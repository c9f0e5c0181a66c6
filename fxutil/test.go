package fxutil

import (
	"testing"

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
