package impl

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestClientGoLogs(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := ClientGo(zap.New(core)).WithName("leaderelection").WithValues("lock", "lazyscale/lazyscale-leader")
	l.Error(fmt.Errorf("get lease: %w", context.Canceled), "Error retrieving lease lock")
	l.Error(errors.New("connection refused"), "Error retrieving lease lock")
	l.Error(errors.New("connection refused"), "Failed to watch")
	entries := logs.All()
	if assert.Len(t, entries, 3) {
		assert.Equal(t, zapcore.DebugLevel, entries[0].Level, "a cancelled request is expected on stop")
		assert.Equal(t, "get lease: context canceled", entries[0].ContextMap()["error"])
		assert.Equal(t, "lazyscale/lazyscale-leader", entries[0].ContextMap()["lock"])
		assert.Equal(t, zapcore.DebugLevel, entries[1].Level, "the elector's retries: lazyscale reports the Lease itself")
		assert.Equal(t, zapcore.ErrorLevel, entries[2].Level)
		assert.Empty(t, entries[2].Stack, "no stack trace for client-go's errors")
	}
}
