package impl

import (
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	admissiondef "github.com/lazyscale/lazyscale/comp/admission/def"
)

// MatchConditionName names the entry's match condition (admission.scope workloads).
const MatchConditionName = "lazyscale-autoscaled-workloads"

// WorkloadConditions is the match condition that sends the webhook only the new pods of the
// given workloads. It resolves a pod's owner as the patcher does (wmdef.ResolveOwner): the
// controller owner reference; a ReplicaSet named "<deployment>-<pod-template-hash label>" is
// its Deployment's, a StatefulSet is itself. The result is looked up in a map literal, one
// entry per workload, so the apiserver's work per pod does not grow with the workloads.
//
// It never fails on a pod it does not expect: a missing field is a false, not an error (an
// error would skip the webhook under failurePolicy Ignore and reject the pod under Fail).
func WorkloadConditions(ws []admissiondef.Workload) []admissionregistrationv1.MatchCondition {
	var m strings.Builder
	m.WriteString("{")
	for i, w := range ws {
		if i > 0 {
			m.WriteString(", ")
		}
		m.WriteString(strconv.Quote(w.String()))
		m.WriteString(": true")
	}
	m.WriteString("}")
	const hash = "object.metadata.labels['pod-template-hash']"
	owner := "r.kind == 'StatefulSet' ? 'StatefulSet/' + r.name : " +
		"r.kind == 'ReplicaSet' && has(object.metadata.labels) && 'pod-template-hash' in object.metadata.labels && " +
		"size(" + hash + ") > 0 && r.name.endsWith('-' + " + hash + ") ? " +
		"'Deployment/' + r.name.substring(0, size(r.name) - size(" + hash + ") - 1) : ''"
	expr := "has(object.metadata.ownerReferences) && object.metadata.ownerReferences.exists(r, " +
		"has(r.controller) && r.controller && (request.namespace + '/' + (" + owner + ")) in " + m.String() + ")"
	return []admissionregistrationv1.MatchCondition{{Name: MatchConditionName, Expression: expr}}
}
