package external

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// The endpoint guard: which recommenders the agent may call. A DPA's author names the endpoint
// (the custom-recommender annotation), so without a guard anyone who may write a DPA could make
// the agent POST to any address it reaches: a cloud metadata service, the apiserver, another
// team's Service, presenting the agent's client certificate.
//
// An endpoint is allowed when its host name matches one of the allowed host patterns, or when
// the address it resolves to lies in one of the allowed networks. Whatever the list says,
// link-local, metadata, unspecified and multicast addresses are refused, after resolution: the
// guard resolves the name itself and dials the address it checked, so a name that resolves
// elsewhere the second time (DNS rebinding) gains nothing. Loopback addresses (the agent's own
// pod) are refused unless a listed network holds them: a name is not enough, since a namespace
// user's ExternalName Service can make a *.svc name resolve to anything.

// DefaultAllowedEndpoints admits in-cluster Services only.
var DefaultAllowedEndpoints = []string{"*.svc", "*.svc.cluster.local"}

// RefusedError is an endpoint the guard refused: no connection was made.
type RefusedError struct {
	Endpoint string
	Reason   string
}

// Refusal implements def.Refusal.
func (e *RefusedError) Refusal() {}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("endpoint %s refused: %s", e.Endpoint, e.Reason)
}

// guard holds the allowed host patterns and networks.
type guard struct {
	// hosts are exact names ("recommender.example.com"), suffixes ("*.svc": any name ending
	// in ".svc") or "*" (any name).
	hosts []string
	nets  []netip.Prefix
	// list is the configured list, for messages.
	list string
	// lookup resolves a name (net.DefaultResolver's; tests replace it).
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// newGuard parses the allowed endpoints: host patterns, IP addresses and CIDRs.
func newGuard(entries []string) (*guard, error) {
	g := &guard{list: strings.Join(entries, ","), lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}}
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		addr, addrErr := netip.ParseAddr(e)
		switch {
		case e == "":
			continue
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("%q: not a CIDR: %w", e, err)
			}
			g.nets = append(g.nets, p.Masked())
		case addrErr == nil:
			a := addr.Unmap()
			g.nets = append(g.nets, netip.PrefixFrom(a, a.BitLen()))
		case e == "*":
			g.hosts = append(g.hosts, e)
		default:
			name := strings.TrimPrefix(e, "*.")
			if strings.Contains(name, "*") || strings.ContainsAny(name, ":/@ ") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") {
				return nil, fmt.Errorf("%q: want a host name, *.suffix, *, an IP address or a CIDR", e)
			}
			g.hosts = append(g.hosts, e)
		}
	}
	return g, nil
}

// nameAllowed: host (a name, not an address) matches a host pattern.
func (g *guard) nameAllowed(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return slices.ContainsFunc(g.hosts, func(p string) bool {
		if p == "*" {
			return true
		}
		if suffix, ok := strings.CutPrefix(p, "*"); ok {
			return strings.HasSuffix(host, suffix) && len(host) > len(suffix)
		}
		return host == p
	})
}

// netAllowed: a lies in an allowed network.
func (g *guard) netAllowed(a netip.Addr) bool {
	return slices.ContainsFunc(g.nets, func(p netip.Prefix) bool { return p.Contains(a) })
}

// metadataAddrs are cloud metadata services outside the link-local range (which is refused
// whole): AWS's IPv6 one, and Alibaba Cloud's.
var metadataAddrs = []netip.Addr{netip.MustParseAddr("fd00:ec2::254"), netip.MustParseAddr("100.100.100.200")}

// forbidden says why a is never dialled, whatever the list ("" if it may be).
func forbidden(a netip.Addr) string {
	switch {
	case a.IsLinkLocalUnicast():
		return "a link-local address (cloud metadata services live there)"
	case slices.Contains(metadataAddrs, a):
		return "a cloud metadata address"
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsMulticast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast():
		return "a multicast address"
	}
	return ""
}

// check refuses, before any connection, an endpoint the list cannot allow: a host that is an
// address outside the allowed networks (or always refused), or a name that matches no pattern
// while no network is allowed (no address it resolves to could be). A name left to the
// networks is checked again when dialled.
func (g *guard) check(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return &RefusedError{Endpoint: endpoint, Reason: "not a URL"}
	}
	if u.User != nil {
		return &RefusedError{Endpoint: redacted(u), Reason: "credentials in the URL are not sent"}
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		return g.checkAddr(endpoint, host, a.Unmap())
	}
	if !g.nameAllowed(host) && len(g.nets) == 0 {
		return &RefusedError{Endpoint: endpoint, Reason: fmt.Sprintf("host %s is not in autoscaling.workload.external_recommender.allowed_endpoints (%s)", host, g.list)}
	}
	return nil
}

// checkAddr: an address dialled for host.
func (g *guard) checkAddr(endpoint, host string, a netip.Addr) error {
	if why := forbidden(a); why != "" {
		if a.String() == host {
			return &RefusedError{Endpoint: endpoint, Reason: fmt.Sprintf("%s is %s", a, why)}
		}
		return &RefusedError{Endpoint: endpoint, Reason: fmt.Sprintf("%s resolves to %s, %s", host, a, why)}
	}
	if g.netAllowed(a) {
		return nil
	}
	if a.IsLoopback() {
		// The agent's own pod (its status port, pprof): only when a network lists it, not
		// through a name (an ExternalName Service can make a *.svc name resolve to localhost).
		return &RefusedError{Endpoint: endpoint, Reason: fmt.Sprintf("%s is a loopback address (the agent's own pod); list it in autoscaling.workload.external_recommender.allowed_endpoints to allow it", a)}
	}
	if a.String() != host && g.nameAllowed(host) {
		return nil
	}
	if a.String() == host {
		return &RefusedError{Endpoint: endpoint, Reason: fmt.Sprintf("address %s is not in autoscaling.workload.external_recommender.allowed_endpoints (%s)", a, g.list)}
	}
	return &RefusedError{Endpoint: endpoint, Reason: fmt.Sprintf("host %s (%s) is not in autoscaling.workload.external_recommender.allowed_endpoints (%s)", host, a, g.list)}
}

// dial is the transport's DialContext: it resolves the host, checks every address, and dials
// one it checked. The endpoint in its errors is the host and port dialled.
func (g *guard) dial(dialer *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(host); err == nil {
			addrs = []netip.Addr{a.Unmap()}
		} else if addrs, err = g.lookup(ctx, host); err != nil {
			return nil, err
		}
		var refused error
		var allowed []netip.Addr
		for _, a := range addrs {
			if err := g.checkAddr(addr, host, a.Unmap()); err != nil {
				refused = err
				continue
			}
			allowed = append(allowed, a.Unmap())
		}
		if len(allowed) < len(addrs) {
			// One refused address refuses the name: a name that may resolve to a metadata
			// address is not one to call, whichever address a dial would pick.
			return nil, refused
		}
		var errs []error
		for _, a := range allowed {
			conn, err := dialer.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
			if err == nil {
				return conn, nil
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			return nil, fmt.Errorf("%s resolves to no address", host)
		}
		return nil, errors.Join(errs...)
	}
}

// redacted is u without its credentials.
func redacted(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}
