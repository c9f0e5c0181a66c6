package controller

import ()

// Condition reasons.
const (
	reasonActive         = "Active"
	reasonNotActedOn     = "FieldsNotActedOn"
	reasonPaused         = "LocallyPaused" // as the Cluster Agent writes it
	reasonConflict       = "TargetAlreadyAutoscaled"
	reasonLimit          = "LimitReached"
	reasonTargetNotFound = "TargetNotFound"
	reasonNoError        = "NoError"
	reasonReceived       = "RecommendationReceived"
	reasonFailed         = "RecommendationFailed"
	// reasonPending: a source's first answer is on its way.
	reasonPending          = "RecommendationPending"
	reasonNoSource         = "NoRecommendationSource"
	reasonNothingAllowed   = "NothingAllowed"
	reasonPreview          = "PreviewMode"
	reasonUpdatesDisabled  = "UpdateStrategyDisabled"
	reasonRolloutTriggered = "RolloutTriggered"
	reasonRolloutFailed    = "RolloutFailed"
	reasonUpToDate         = "UpToDate"
	reasonRolloutPending   = "RolloutPending"
	reasonLimited          = "Limited"
	reasonWithinBounds     = "WithinBounds"
	// reasonUnsupportedTarget: the target's kind allows horizontal scaling only.
	reasonUnsupportedTarget = "UnsupportedTarget"
)
