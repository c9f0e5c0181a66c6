// Package version holds the build version of lazyscale. It is a plain package, not a
// component, because the version is a fact of the binary that every client needs (the
// user agent) before any component exists.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at build time with -ldflags "-X github.com/lazyscale/lazyscale/comp/core/version.Version=...".
var Version = "dev"

// Commit is the source revision when the build passes it with -ldflags
// "-X github.com/lazyscale/lazyscale/comp/core/version.Commit=..." (make build does): builds
// with -buildvcs=false, or from a copy without .git, carry no revision of their own.
var Commit = ""

// UserAgent is the user agent every request to the Kubernetes API carries.
func UserAgent() string { return "lazyscale/" + Version }

// Info is what `lazyscale version` reports: the version and what the binary was built from.
type Info struct {
	Version string `json:"version"`
	// Commit is the source revision (vcs.revision of the build), "unknown" when not built
	// from a checkout.
	Commit string `json:"commit"`
	// Modified: the checkout had uncommitted changes.
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	// ClientGo is the version of k8s.io/client-go linked in.
	ClientGo string `json:"client_go"`
}

// Get reads Info from the binary's build information.
func Get() Info {
	info := Info{Version: Version, Commit: "unknown", Go: runtime.Version(), ClientGo: "unknown"}
	if Commit != "" {
		info.Commit = Commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		if d.Path == "k8s.io/client-go" {
			info.ClientGo = d.Version
			if d.Replace != nil {
				info.ClientGo = d.Replace.Version
			}
		}
	}
	return info
}

func (i Info) String() string {
	commit := i.Commit
	if i.Modified {
		commit += "-dirty"
	}
	return fmt.Sprintf("lazyscale %s (commit %s, %s, client-go %s)", i.Version, commit, i.Go, i.ClientGo)
}
