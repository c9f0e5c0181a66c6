package main

// -workloads deployments: the bench's pods are made by real Deployments on kwok's nodes, so
// they carry what the real controllers write (the ReplicaSet controller's managedFields, the
// scheduler's binding, kwok's status), instead of being created one by one by the bench.

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/lazyscale/lazyscale/test/controlplane"
)

const (
	benchNamespaces  = 10
	benchDeployments = 200
	// podsPerNode: a bench pod requests 400m CPU; a kwok node has 32 CPUs and room for 110
	// pods. Fewer than the 80 that fit leaves the scheduler room.
	podsPerNode = 60
)

// nodesFor is how many kwok nodes run n bench pods.
func nodesFor(n int) int { return n/podsPerNode + 1 }

// scaleDeployments creates (or scales) the 200 Deployments svc-000..svc-199, svc-k in
// team-(k mod 10), to total replicas in all, with the bench pod's template, and waits until
// total pods run. It returns how long that took.
func scaleDeployments(ctx context.Context, kube kubernetes.Interface, total int) (time.Duration, error) {
	start := time.Now()
	for i := range benchNamespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-%d", i)}}
		if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return 0, err
		}
	}
	for k := range benchDeployments {
		replicas := int32(total / benchDeployments)
		if k < total%benchDeployments {
			replicas++
		}
		p := benchPod(k, benchNamespaces)
		name := p.Labels["app"]
		deployments := kube.AppsV1().Deployments(p.Namespace)
		cur, err := deployments.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			p.Spec.NodeName = ""
			labels := map[string]string{}
			for key, v := range p.Labels {
				if key != "pod-template-hash" {
					labels[key] = v
				}
			}
			d := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace},
				Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: p.Annotations}, Spec: p.Spec}},
			}
			_, err = deployments.Create(ctx, d, metav1.CreateOptions{})
		} else if err == nil && *cur.Spec.Replicas != replicas {
			cur.Spec.Replicas = &replicas
			_, err = deployments.Update(ctx, cur, metav1.UpdateOptions{})
		}
		if err != nil {
			return 0, fmt.Errorf("deployment %s: %w", name, err)
		}
	}
	running := 0
	err := waitUntil(30*time.Minute, func() bool {
		n, err := countRunning(ctx, kube)
		if err == nil && n != running {
			running = n
		}
		return err == nil && n >= total
	})
	if err != nil {
		return 0, fmt.Errorf("%d of %d pods running: %w", running, total, err)
	}
	return time.Since(start), nil
}

// countRunning counts the bench's running pods (all carry team=payments).
func countRunning(ctx context.Context, kube kubernetes.Interface) (int, error) {
	pods, err := controlplane.RunningPods(ctx, kube, "", "team=payments")
	return len(pods), err
}
