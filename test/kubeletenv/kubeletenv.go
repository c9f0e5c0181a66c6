// Package kubeletenv builds the environment a kubelet gives a container, for tests that run
// lazyscale's binary as its pod would: the service-link variables of the namespace's Services.
package kubeletenv

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// ServiceLinks is what the kubelet injects for svc into a pod of its namespace with
// enableServiceLinks true (the default): {SVC}_SERVICE_HOST, {SVC}_SERVICE_PORT and one
// {SVC}_SERVICE_PORT_{NAME} per named port, {SVC}_PORT for the first port, and
// {SVC}_PORT_{port}_{PROTO} with its _PROTO, _PORT and _ADDR parts for every port, where {SVC}
// is the Service's name upper-cased with "-" as "_". A headless Service gets none.
func ServiceLinks(svc *corev1.Service) []string {
	ip := svc.Spec.ClusterIP
	if ip == "" || ip == corev1.ClusterIPNone || len(svc.Spec.Ports) == 0 {
		return nil
	}
	name := strings.ToUpper(strings.ReplaceAll(svc.Name, "-", "_"))
	host := ip
	if strings.Contains(ip, ":") {
		host = "[" + ip + "]"
	}
	first := svc.Spec.Ports[0]
	env := []string{
		fmt.Sprintf("%s_SERVICE_HOST=%s", name, ip),
		fmt.Sprintf("%s_SERVICE_PORT=%d", name, first.Port),
		fmt.Sprintf("%s_PORT=%s://%s:%d", name, proto(first), host, first.Port),
	}
	for _, p := range svc.Spec.Ports {
		if p.Name != "" {
			env = append(env, fmt.Sprintf("%s_SERVICE_PORT_%s=%d", name, strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), p.Port))
		}
		base := fmt.Sprintf("%s_PORT_%d_%s", name, p.Port, strings.ToUpper(proto(p)))
		env = append(env,
			fmt.Sprintf("%s=%s://%s:%d", base, proto(p), host, p.Port),
			fmt.Sprintf("%s_PROTO=%s", base, proto(p)),
			fmt.Sprintf("%s_PORT=%d", base, p.Port),
			fmt.Sprintf("%s_ADDR=%s", base, ip),
		)
	}
	return env
}

func proto(p corev1.ServicePort) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return strings.ToLower(string(p.Protocol))
}
