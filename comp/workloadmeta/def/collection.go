package def

import "time"

// CollectionMode is how a kind's collection runs, as resolved from the configuration.
type CollectionMode string

// Resolved modes: the configured "auto" resolves to deferred or off.
const (
	// ModeDeferred: behind the autoscaling gate.
	ModeDeferred CollectionMode = "deferred"
	// ModeEager: from startup.
	ModeEager CollectionMode = "eager"
	// ModeOff: never.
	ModeOff CollectionMode = "off"
)

// PodCollectionStatus is the "pod_collection" section of /status.
type PodCollectionStatus struct {
	State     CollectionState `json:"state"`
	Mode      CollectionMode  `json:"mode"`
	Pods      int             `json:"pods"`
	WatchList bool            `json:"watch_list"`
	// SyncedAt is when the initial sync finished; zero before.
	SyncedAt time.Time `json:"synced_at,omitzero"`
	// SyncedIn is how long the initial sync took, rounded ("812ms").
	SyncedIn string `json:"synced_in,omitempty"`
}
