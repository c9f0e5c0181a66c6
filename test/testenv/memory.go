package testenv

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Memory is what a running agent holds, read through its status address.
type Memory struct {
	// LiveHeap is the heap the last of two forced collections found live
	// (go_gc_heap_live_bytes): what a leak shows in, without what was allocated since.
	LiveHeap float64
	// RSS is the process's resident memory.
	RSS float64
	// Goroutines is the number of goroutines.
	Goroutines float64
	// Profile is the heap profile (pprof's format) taken with the second collection.
	Profile []byte
}

// AgentMemory forces two garbage collections in the agent at addr (pprof's heap profile with
// gc=1: what sync.Pools held in the first goes with the second) and reads its memory. The agent
// must serve pprof (status.pprof).
func AgentMemory(addr string) (Memory, error) {
	client := http.Client{Timeout: 30 * time.Second}
	read := func(path string) ([]byte, error) {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
		}
		return body, nil
	}
	var m Memory
	for range 2 {
		prof, err := read("/debug/pprof/heap?gc=1")
		if err != nil {
			return m, fmt.Errorf("forced GC through pprof: %w", err)
		}
		m.Profile = prof
	}
	text, err := read("/metrics")
	if err != nil {
		return m, err
	}
	for name, into := range map[string]*float64{"go_gc_heap_live_bytes": &m.LiveHeap, "process_resident_memory_bytes": &m.RSS, "go_goroutines": &m.Goroutines} {
		v, ok := sample(string(text), name)
		if !ok {
			return m, fmt.Errorf("/metrics has no %s", name)
		}
		*into = v
	}
	return m, nil
}

// sample returns the value of an unlabelled series in a Prometheus text exposition.
func sample(text, name string) (float64, bool) {
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}
