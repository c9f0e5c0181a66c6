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
	// Scope is where pods are collected; nil before the collection starts.
	Scope *PodScopeStatus `json:"scope,omitempty"`
}

// PodScopeStatus is where the pod collection looks.
type PodScopeStatus struct {
	// Scoped is false when the collection is cluster-wide for good (eager mode, or
	// workloadmeta.pods.cluster_wide_above 0).
	Scoped bool `json:"scoped"`
	// ClusterWide: one watch over every namespace's pods runs now.
	ClusterWide bool `json:"cluster_wide"`
	// ClusterWideAbove is the number of wanted namespaces above which one cluster-wide watch
	// replaces the per-namespace ones.
	ClusterWideAbove int `json:"cluster_wide_above"`
	// Namespaces is how many namespaces hold a DPA (the wanted ones).
	Namespaces int `json:"namespaces"`
	// Watched are the namespaces watched one by one (empty when cluster-wide).
	Watched []string `json:"watched,omitempty"`
	// NamespacesSynced is how many of Watched are synced.
	NamespacesSynced int `json:"namespaces_synced,omitempty"`
	// Synced: the pods of every wanted namespace are in the store.
	Synced bool `json:"synced"`
}
