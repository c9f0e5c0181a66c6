// Package fx provides the agent's *zap.Logger and routes fx's own events through it. The log
// component has no def package: the logger is its interface, and wrapping it would only hide
// zap's structured API.
package fx

import (
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	configdef "github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/comp/core/log/impl"
)

// Module provides *zap.Logger.
func Module() fx.Option {
	return fx.Module("log", fx.Provide(newLogger))
}

// FxEvents routes fx's own events through the agent's logger, at debug level, errors too: fx
// returns every error it logs (from fx.New, Start or Stop), and the caller reports it once. It
// is an app-level option, so a binary or bundle adds it once.
func FxEvents() fx.Option {
	return fx.WithLogger(func(l *zap.Logger) fxevent.Logger {
		fl := &fxevent.ZapLogger{Logger: l.Named("fx")}
		fl.UseLogLevel(zapcore.DebugLevel)
		fl.UseErrorLevel(zapcore.DebugLevel)
		return fl
	})
}

func newLogger(lc fx.Lifecycle, cfg configdef.Component) (*zap.Logger, error) {
	p, err := impl.NewComponent(impl.Requires{Config: cfg})
	if err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{OnStop: p.Stop})
	return p.Logger, nil
}
