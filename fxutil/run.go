// Package fxutil holds what lazyscale's binaries need from fx and nothing else: Run, which runs
// an fx application until a signal and returns its errors instead of exiting. Plain lifecycle
// helpers live in package lifecycle and the fxtest helpers in fxutil/fxutiltest, so that
// neither impl packages nor the binary link fx's test support or package testing through it.
package fxutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/dig"
	"go.uber.org/fx"
)

// Run builds an fx application from opts, starts it, blocks until SIGINT/SIGTERM (or until a
// component calls fx.Shutdowner), then stops it. Construction, start and stop errors are
// returned, not logged or exited on: the caller decides the exit code. A second signal
// during stop is not handled specially; fx's stop timeout bounds the shutdown.
func Run(opts ...fx.Option) error {
	app := fx.New(opts...)
	if err := app.Err(); err != nil {
		// The graph's error names every constructor between the entry point and the one that
		// failed (kilobytes for a missing kubeconfig); the user needs the last one's words.
		// The whole chain is in the fx events, at debug level.
		return dig.RootCause(err)
	}
	return RunApp(context.Background(), app)
}

// RunApp starts an already built app (bounded by its start timeout), waits for ctx to be
// done, a signal or a shutdown request, and stops it. It exists so tests can drive the run
// loop with a context.
func RunApp(ctx context.Context, app *fx.App) error {
	startCtx, cancel := context.WithTimeout(context.Background(), app.StartTimeout())
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		stopErr := stop(app)
		return errors.Join(fmt.Errorf("start: %w", err), stopErr)
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)

	var exitCode int
	select {
	case <-ctx.Done():
	case <-signals:
	case sig := <-app.Wait():
		exitCode = sig.ExitCode
	}
	if err := stop(app); err != nil {
		return err
	}
	if exitCode != 0 {
		return fmt.Errorf("shutdown requested with exit code %d", exitCode)
	}
	return nil
}

func stop(app *fx.App) error {
	stopCtx, cancel := context.WithTimeout(context.Background(), app.StopTimeout())
	defer cancel()
	if err := app.Stop(stopCtx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}
