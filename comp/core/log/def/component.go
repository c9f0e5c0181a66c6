// Package def documents the log component. It provides a *zap.Logger directly: the logger is
// the interface, and wrapping it would only hide zap's structured API.
package def

import "go.uber.org/zap"

// Component is the agent's root logger. Components call Named once with their own name.
type Component = *zap.Logger
