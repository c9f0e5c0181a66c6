// Package impl builds the agent's zap logger from the configuration.
package impl

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/lazyscale/lazyscale/comp/core/config/def"
)

// Requires is what the log component needs.
type Requires struct {
	Config def.Component
}

// Provides is what the log component gives.
type Provides struct {
	Logger *zap.Logger
	// Stop flushes buffered entries; the fx module calls it on stop.
	Stop func(context.Context) error
}

// NewComponent builds a logger writing to stderr at the configured level and format.
func NewComponent(reqs Requires) (Provides, error) {
	cfg := reqs.Config.Get().Log
	level, err := zapcore.ParseLevel(cfg.Level)
	if err != nil {
		return Provides{}, fmt.Errorf("log level: %w", err)
	}
	var zc zap.Config
	if cfg.Format == "json" {
		zc = zap.NewProductionConfig()
	} else {
		zc = zap.NewDevelopmentConfig()
		zc.Development = false
		zc.DisableStacktrace = true
	}
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zc.Sampling = nil
	logger, err := zc.Build()
	if err != nil {
		return Provides{}, fmt.Errorf("build logger: %w", err)
	}
	logger = logger.Named("lazyscale")
	return Provides{
		Logger: logger,
		Stop: func(context.Context) error {
			// Sync on stderr returns EINVAL on some terminals; there is nothing to do about it.
			_ = logger.Sync()
			return nil
		},
	}, nil
}
