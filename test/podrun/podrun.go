// Package podrun builds the command line a kubelet would run for a Deployment's container,
// with the binary on this machine: the container's args, its env with the downward API
// resolved, the service-link variables of the namespace's Services (and of the kubernetes
// Service), the config file it mounts from a ConfigMap, and its ServiceAccount's token from the
// TokenRequest API. The e2e tests and `make run-pod` use it.
package podrun

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/lazyscale/lazyscale/test/kubeletenv"
)

// Pod is where the pod runs and what it is given beyond its spec.
type Pod struct {
	Kube kubernetes.Interface
	// Kubeconfig is an admin kubeconfig of the cluster: its server and CA are reused with the
	// ServiceAccount's token.
	Kubeconfig string
	Namespace  string
	Deployment string
	// PodName is metadata.name for the downward API.
	PodName string
	// Config is merged over the config file the pod mounts: what a local run needs (loopback
	// addresses), nothing else.
	Config map[string]any
	// Dir receives the config file and the ServiceAccount's kubeconfig.
	Dir string
}

// Command is the container's command line for bin, with extra args appended.
func (p Pod) Command(ctx context.Context, bin string, extra ...string) (*exec.Cmd, error) {
	d, err := p.Kube.AppsV1().Deployments(p.Namespace).Get(ctx, p.Deployment, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	args, err := p.configArgs(ctx, spec, c)
	if err != nil {
		return nil, err
	}
	env, err := p.env(ctx, c)
	if err != nil {
		return nil, err
	}
	kc, err := p.serviceAccountKubeconfig(ctx, spec.ServiceAccountName)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, append(append(args, "--kubeconfig", kc), extra...)...)
	cmd.Env = append(env, "PATH="+os.Getenv("PATH"))
	return cmd, nil
}

// configArgs are the container's args, the path of each ConfigMap file it mounts replaced by a
// local copy with p.Config merged over it.
func (p Pod) configArgs(ctx context.Context, spec corev1.PodSpec, c corev1.Container) ([]string, error) {
	args := append([]string{}, c.Args...)
	for _, m := range c.VolumeMounts {
		var cmName string
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil {
				cmName = v.ConfigMap.Name
			}
		}
		if cmName == "" || m.SubPath == "" {
			continue
		}
		cm, err := p.Kube.CoreV1().ConfigMaps(p.Namespace).Get(ctx, cmName, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		cfg := map[string]any{}
		if err := yaml.Unmarshal([]byte(cm.Data[m.SubPath]), &cfg); err != nil {
			return nil, fmt.Errorf("ConfigMap %s: %w", cmName, err)
		}
		merge(cfg, p.Config)
		b, err := yaml.Marshal(cfg)
		if err != nil {
			return nil, err
		}
		local := filepath.Join(p.Dir, m.SubPath)
		if err := os.WriteFile(local, b, 0o600); err != nil {
			return nil, err
		}
		for i := range args {
			if args[i] == m.MountPath {
				args[i] = local
			}
		}
	}
	return args, nil
}

// env is the container's env (downward API metadata.name resolved) and the service links.
func (p Pod) env(ctx context.Context, c corev1.Container) ([]string, error) {
	svcs, err := p.Kube.CoreV1().Services(p.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	master, err := p.Kube.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var env []string
	for _, svc := range append(svcs.Items, *master) {
		env = append(env, kubeletenv.ServiceLinks(&svc)...)
	}
	for _, v := range c.Env {
		value := v.Value
		if v.ValueFrom != nil {
			if v.ValueFrom.FieldRef == nil || v.ValueFrom.FieldRef.FieldPath != "metadata.name" {
				return nil, fmt.Errorf("env %s: only the downward API's metadata.name is resolved here", v.Name)
			}
			value = p.PodName
		}
		env = append(env, v.Name+"="+value)
	}
	return env, nil
}

// serviceAccountKubeconfig writes a kubeconfig that authenticates with a token of the
// ServiceAccount from the TokenRequest API, as the kubelet projects one into the pod.
func (p Pod) serviceAccountKubeconfig(ctx context.Context, sa string) (string, error) {
	tr, err := p.Kube.CoreV1().ServiceAccounts(p.Namespace).CreateToken(ctx, sa,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(24 * 3600))}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token of ServiceAccount %s/%s: %w", p.Namespace, sa, err)
	}
	admin, err := clientcmd.LoadFromFile(p.Kubeconfig)
	if err != nil {
		return "", err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["cluster"] = admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster]
	cfg.AuthInfos["sa"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["sa"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "sa"}
	cfg.CurrentContext = "sa"
	path := filepath.Join(p.Dir, "serviceaccount.kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

// merge sets src's leaves into dst.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sub, ok := v.(map[string]any); ok {
			d, _ := dst[k].(map[string]any)
			if d == nil {
				d = map[string]any{}
			}
			merge(d, sub)
			dst[k] = d
			continue
		}
		dst[k] = v
	}
}

func ptr[T any](v T) *T { return &v }
