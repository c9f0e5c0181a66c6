// Package v1alpha1 holds the v1alpha1 version of the DatadogPodAutoscaler (DPA) API, served
// beside v1alpha2 as the Datadog Operator's CRD serves it. v1alpha2 is the storage version and
// the only one lazyscale reads; the CRD's conversion strategy is None, as the Datadog CRD's, so
// the apiserver only rewrites apiVersion between the two. Most types are shared with v1alpha2;
// the spec differs: `policy` (applyMode All/Manual/None, update, upscale, downscale) and
// `targets` where v1alpha2 has `applyPolicy` and `objectives`, and no `fallback` or `options`.
// docs/compatibility.md says what the apiserver keeps of a v1alpha1 object.
//
// +kubebuilder:object:generate=true
// +groupName=datadoghq.com
package v1alpha1
