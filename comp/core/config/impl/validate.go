package impl

import (
	"fmt"
	"net"
	"slices"
	"strconv"

	"github.com/lazyscale/lazyscale/comp/core/config/def"
)

func validate(c def.Config) error {
	oneOf := func(key, value string, allowed ...string) error {
		if slices.Contains(allowed, value) {
			return nil
		}
		return &def.Error{Key: key, Err: fmt.Errorf("%q is not one of %v", value, allowed)}
	}
	if err := oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error"); err != nil {
		return err
	}
	if err := oneOf("log.format", c.Log.Format, "console", "json"); err != nil {
		return err
	}
	if err := oneOf("workloadmeta.pods.collection", c.Workloadmeta.Pods.Collection,
		def.CollectionAuto, def.CollectionEager, def.CollectionOff); err != nil {
		return err
	}
	if c.Kubernetes.QPS <= 0 {
		return &def.Error{Key: "kubernetes.qps", Err: fmt.Errorf("must be positive, got %v", c.Kubernetes.QPS)}
	}
	if c.Kubernetes.Burst < 1 {
		return &def.Error{Key: "kubernetes.burst", Err: fmt.Errorf("must be at least 1, got %d", c.Kubernetes.Burst)}
	}
	if p := c.Workloadmeta.Pods.PageSize; p < 1 || p > 10000 {
		return &def.Error{Key: "workloadmeta.pods.page_size", Err: fmt.Errorf("must be within 1..10000, got %d", p)}
	}
	if _, port, err := net.SplitHostPort(c.Status.Addr); err != nil {
		return &def.Error{Key: "status.addr", Err: fmt.Errorf("want host:port: %w", err)}
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return &def.Error{Key: "status.addr", Err: fmt.Errorf("invalid port %q", port)}
	}
	return nil
}
