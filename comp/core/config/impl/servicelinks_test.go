package impl

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lazyscale/lazyscale/comp/core/config/def"
	"github.com/lazyscale/lazyscale/test/kubeletenv"
)

func service(name, ip string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: ports}}
}

// The kubelet's variables for Services whose names fall under LAZYSCALE_ (the install's
// lazyscale-admission among them, which collides with admission.port and
// admission.service_port) are not configuration: the agent starts with its defaults.
func TestServiceLinksAreNotConfig(t *testing.T) {
	var env []string
	for _, svc := range []*corev1.Service{
		service("lazyscale-admission", "10.96.0.7", corev1.ServicePort{Name: "https", Port: 443}),
		service("lazyscale", "10.96.0.8", corev1.ServicePort{Name: "metrics", Port: 5080}, corev1.ServicePort{Port: 53, Protocol: corev1.ProtocolUDP}),
		service("lazyscale-log-level", "fd00::9", corev1.ServicePort{Port: 8080}),
		service("lazyscale-headless", corev1.ClusterIPNone, corev1.ServicePort{Port: 80}),
	} {
		env = append(env, kubeletenv.ServiceLinks(svc)...)
	}
	require.Contains(t, env, "LAZYSCALE_ADMISSION_PORT=tcp://10.96.0.7:443")
	cfg, err := Load("", env, nil)
	require.NoError(t, err)
	assert.Equal(t, def.Defaults().Admission.Port, cfg.Admission.Port)
	assert.Equal(t, def.Defaults().Admission.ServicePort, cfg.Admission.ServicePort)
	assert.Equal(t, def.Defaults().Log.Level, cfg.Log.Level)
}

// What the pod spec sets explicitly replaces the kubelet's variable of the same name, and is
// configuration; a typo is still an unknown key.
func TestExplicitValuesBesideServiceLinks(t *testing.T) {
	env := kubeletenv.ServiceLinks(service("lazyscale-admission", "10.96.0.7", corev1.ServicePort{Port: 443}))
	for i, kv := range env {
		switch kv { // the pod spec's values win over the kubelet's
		case "LAZYSCALE_ADMISSION_PORT=tcp://10.96.0.7:443":
			env[i] = "LAZYSCALE_ADMISSION_PORT=9443"
		case "LAZYSCALE_ADMISSION_SERVICE_PORT=443":
			env[i] = "LAZYSCALE_ADMISSION_SERVICE_PORT=8443"
		}
	}
	cfg, err := Load("", env, nil)
	require.NoError(t, err)
	assert.Equal(t, 9443, cfg.Admission.Port)
	assert.Equal(t, 8443, cfg.Admission.ServicePort, "differs from the Service's port: not a link")

	_, err = Load("", append(env, "LAZYSCALE_ADMISION_PORT=9443"), nil)
	var cerr *def.Error
	require.ErrorAs(t, err, &cerr)
	assert.Equal(t, "LAZYSCALE_ADMISION_PORT", cerr.Key)

	// Without a Service host the shape alone proves nothing: a bad value is an error.
	_, err = Load("", []string{"LAZYSCALE_ADMISSION_PORT=tcp://10.96.0.7:443"}, nil)
	require.ErrorAs(t, err, &cerr)
	assert.Contains(t, err.Error(), "want an integer")
}
