#!/usr/bin/env python3
# Compares one version of a CRD of ours with the same CRD of another project, path by path, and
# prints where ours would refuse what theirs accepts: a missing field, another type or format, an
# enum value theirs allows and ours does not, a narrower minimum/maximum/length/items bound, an
# extra required field, a CEL rule, a map or set list type. "no differences" when there is none.
#
#   python3 hack/crdcompare/crdcompare.py THEIRS.yaml deploy/crds/datadoghq.com_datadogpodautoscalers.yaml v1alpha2
#
# The Datadog Operator's CRDs (config/crd/bases/v1 in its repository) were compared so for
# docs/compatibility.md. Needs PyYAML (Debian: python3-yaml).
import yaml,sys
def load(p,ver):
    d=yaml.safe_load(open(p))
    for v in d['spec']['versions']:
        if v['name']==ver: return v['schema']['openAPIV3Schema']
def walk(t,o,path,out):
    if o is None:
        out.append(f"MISSING in ours: {path}"); return
    for k in ['type','format']:
        if t.get(k)!=o.get(k) and not (k=='type' and t.get('x-kubernetes-int-or-string')):
            out.append(f"{path}: {k} theirs={t.get(k)} ours={o.get(k)}")
    if set(t.get('enum') or [])!=set(o.get('enum') or []):
        if o.get('enum') and not set(t.get('enum') or []) <= set(o.get('enum')):
            out.append(f"{path}: enum theirs={t.get('enum')} ours={o.get('enum')}")
        elif o.get('enum') and not t.get('enum'):
            out.append(f"{path}: ours has enum {o.get('enum')}, theirs none")
    for k in ['minimum','minLength','minItems']:
        if o.get(k) is not None and (t.get(k) is None or o[k]>t[k]):
            out.append(f"{path}: {k} theirs={t.get(k)} ours={o.get(k)}")
    for k in ['maximum','maxLength','maxItems']:
        if o.get(k) is not None and (t.get(k) is None or o[k]<t[k]):
            out.append(f"{path}: {k} theirs={t.get(k)} ours={o.get(k)}")
    extra=set(o.get('required',[]))-set(t.get('required',[]))
    if extra: out.append(f"{path}: ours requires more {sorted(extra)}")
    if o.get('x-kubernetes-validations'): out.append(f"{path}: ours has CEL {[x['rule'] for x in o['x-kubernetes-validations']]}")
    if t.get('x-kubernetes-list-type')!=o.get('x-kubernetes-list-type') and o.get('x-kubernetes-list-type') in ('map','set'):
        out.append(f"{path}: list-type theirs={t.get('x-kubernetes-list-type')} ours={o.get('x-kubernetes-list-type')}")
    for k,v in (t.get('properties') or {}).items():
        walk(v,(o.get('properties') or {}).get(k),path+'.'+k,out)
    if 'items' in t: walk(t['items'],o.get('items'),path+'[]',out)
    if isinstance(t.get('additionalProperties'),dict):
        oa=o.get('additionalProperties')
        walk(t['additionalProperties'],oa if isinstance(oa,dict) else None,path+'{}',out)
out=[]
walk(load(sys.argv[1],sys.argv[3]),load(sys.argv[2],sys.argv[3]),'',out)
print("\n".join(out) or "no differences")
