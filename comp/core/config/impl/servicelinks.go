package impl

import (
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// The kubelet injects, for every Service in a pod's namespace (unless the pod sets
// enableServiceLinks: false), variables named after the Service: for "lazyscale-admission",
// LAZYSCALE_ADMISSION_SERVICE_HOST, LAZYSCALE_ADMISSION_SERVICE_PORT,
// LAZYSCALE_ADMISSION_PORT=tcp://10.0.0.7:443, LAZYSCALE_ADMISSION_PORT_443_TCP and more. Their
// names can fall under lazyscale's LAZYSCALE_ prefix, and some are config keys
// (admission.port, admission.service_port). They are not configuration: serviceLinks finds
// them so that they are skipped, by name and by value, and a Service name can never make
// lazyscale exit. A variable the pod spec sets explicitly replaces the kubelet's and is not of
// the shape checked here, so it is read as configuration.

var (
	// <X>_PORT_<port>_<PROTO> and its _PROTO, _PORT and _ADDR parts.
	portVar = regexp.MustCompile(`^_PORT_([0-9]+)_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?$`)
	// <X>_SERVICE_PORT and <X>_SERVICE_PORT_<NAME>.
	servicePortVar = regexp.MustCompile(`^_SERVICE_PORT(_[A-Z0-9_]+)?$`)
)

// serviceLinks returns the names of env (name → value) that are service-link variables: those
// of a prefix X for which X_SERVICE_HOST holds an IP, each of the shape the kubelet gives it.
func serviceLinks(env map[string]string) map[string]bool {
	links := map[string]bool{}
	for name, host := range env {
		prefix, ok := strings.CutSuffix(name, "_SERVICE_HOST")
		if !ok || prefix == "" || net.ParseIP(host) == nil {
			continue
		}
		links[name] = true
		// The Service's ports, as its other links give them: a _SERVICE_PORT variable is a
		// link only when it holds one of them.
		ports := map[string]bool{}
		if u, ok := linkURL(env[prefix+"_PORT"], host); ok {
			links[prefix+"_PORT"] = true
			ports[u.Port()] = true
		}
		for other, value := range env {
			rest, ok := strings.CutPrefix(other, prefix)
			if !ok {
				continue
			}
			if m := portVar.FindStringSubmatch(rest); m != nil && portLinkValue(m[1], m[2], m[3], value, host) {
				links[other] = true
				ports[m[1]] = true
			}
		}
		for other, value := range env {
			if rest, ok := strings.CutPrefix(other, prefix); ok && servicePortVar.MatchString(rest) && ports[value] {
				links[other] = true
			}
		}
	}
	return links
}

// linkURL parses proto://host:port as the kubelet writes it for the Service at host.
func linkURL(value, host string) (*url.URL, bool) {
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "udp" && u.Scheme != "sctp") || u.Hostname() != host || !isPort(u.Port()) {
		return nil, false
	}
	return u, true
}

func portLinkValue(port, proto, part, value, host string) bool {
	switch part {
	case "":
		u, ok := linkURL(value, host)
		return ok && u.Port() == port && strings.EqualFold(u.Scheme, proto)
	case "_PROTO":
		return strings.EqualFold(value, proto)
	case "_PORT":
		return value == port
	case "_ADDR":
		return value == host
	}
	return false
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}
