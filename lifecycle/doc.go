// Package lifecycle holds the plain lifecycle helpers lazyscale's components share: a group of
// goroutines with a join (Routines) and an HTTP server with a drain (HTTPServer). It has no
// dependency on fx, so impl packages and the binary's non-fx code use it without pulling in
// fx or testing.
package lifecycle
