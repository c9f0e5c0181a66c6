// Package version holds the build version of lazyscale. It is a plain package, not a
// component, because the version is a fact of the binary that every client needs (the
// user agent) before any component exists.
package version

// Version is set at build time with -ldflags "-X github.com/lazyscale/lazyscale/comp/core/version.Version=...".
var Version = "dev"

// UserAgent is the user agent every request to the Kubernetes API carries.
func UserAgent() string { return "lazyscale/" + Version }
