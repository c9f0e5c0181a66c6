package impl

import (
	"context"
	"errors"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
)

// ClientGo is the logr.Logger client-go's klog gets: the agent's logger, except that errors
// caused by a cancelled context are logged at debug. client-go logs those at error when a
// shutdown or the end of a term cancels its requests ("Error retrieving lease lock ... context
// canceled"): an expected stop, not a fault an operator should act on.
func ClientGo(l *zap.Logger) logr.Logger {
	return logr.New(canceledAtDebug{zapr.NewLogger(l).GetSink()})
}

type canceledAtDebug struct{ logr.LogSink }

func (s canceledAtDebug) Error(err error, msg string, kv ...any) {
	if errors.Is(err, context.Canceled) {
		s.LogSink.Info(1, msg, append(kv, "error", err.Error())...)
		return
	}
	s.LogSink.Error(err, msg, kv...)
}

func (s canceledAtDebug) WithValues(kv ...any) logr.LogSink {
	return canceledAtDebug{s.LogSink.WithValues(kv...)}
}

func (s canceledAtDebug) WithName(name string) logr.LogSink {
	return canceledAtDebug{s.LogSink.WithName(name)}
}
