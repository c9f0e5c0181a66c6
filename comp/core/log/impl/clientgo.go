package impl

import (
	"context"
	"errors"
	"slices"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"go.uber.org/zap"
)

// ClientGo is the logr.Logger client-go's klog gets: the agent's logger, without stack traces,
// with two kinds of client-go errors moved to debug:
//   - those caused by a cancelled context: client-go logs them at error when a shutdown or the
//     end of a term cancels its requests, an expected stop;
//   - the leader elector's failed Lease requests, which it logs on every retry: lazyscale logs
//     a Lease it cannot use itself, once per kind of error, with what to check
//     (comp/leaderelection).
func ClientGo(l *zap.Logger) logr.Logger {
	return logr.New(clientGoSink{zapr.NewLogger(l.WithOptions(zap.AddStacktrace(zap.FatalLevel))).GetSink()})
}

// leaseMessages are the leader elector's error messages (k8s.io/client-go/tools/leaderelection).
var leaseMessages = []string{"Error retrieving lease lock", "Error initially creating lease lock", "Failed to update lease"}

type clientGoSink struct{ logr.LogSink }

func (s clientGoSink) Error(err error, msg string, kv ...any) {
	if errors.Is(err, context.Canceled) || slices.Contains(leaseMessages, msg) {
		if err != nil {
			kv = append(kv, "error", err.Error())
		}
		s.LogSink.Info(1, msg, kv...)
		return
	}
	s.LogSink.Error(err, msg, kv...)
}

func (s clientGoSink) WithValues(kv ...any) logr.LogSink {
	return clientGoSink{s.LogSink.WithValues(kv...)}
}

func (s clientGoSink) WithName(name string) logr.LogSink {
	return clientGoSink{s.LogSink.WithName(name)}
}
