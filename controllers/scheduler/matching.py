"""Label selectors, node selectors and tolerations, matched the way the scheduler does.

Label selectors are the client runtime's (`minikube_py.client.labels`), shared with the
controllers; this module adds what only the scheduler needs, following
k8s.io/component-helpers/scheduling/corev1 (nodeaffinity, helpers):
- metav1.LabelSelector: `None` matches nothing, `{}` matches everything (and is "empty",
  which PodTopologySpread counts as matching no pods). A malformed selector matches
  nothing: the API server validated it, and the scheduler ignores parse errors.
- NodeSelectorTerm: an empty term matches no node; terms are ORed, requirements ANDed;
  `matchFields` only knows `metadata.name`; Gt/Lt compare integers.
- Toleration: empty effect matches every effect, empty key with Exists matches every key,
  an empty operator means Equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from minikube_py.client.labels import (
    EVERYTHING,
    NOTHING,
    Requirement,
    Selector,
    as_selector,
    from_label_selector,
)

Obj = Mapping[str, Any]
NODE_NAME_FIELD = "metadata.name"
_NODE_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!", "Gt": "gt", "Lt": "lt"}

__all__ = ["EVERYTHING", "NOTHING", "Selector", "label_selector", "selector_from_set", "merged",
           "node_selector_term_matches", "node_selector_matches", "required_node_affinity_matches",
           "preferred_node_affinity_score", "toleration_tolerates", "tolerations_tolerate",
           "find_untolerated_taint"]


def label_selector(selector: Obj | None) -> Selector:
    """metav1.LabelSelectorAsSelector: None matches nothing, {} matches everything."""
    try:
        return from_label_selector(selector)
    except (ValueError, KeyError):
        return NOTHING


def selector_from_set(labels: Mapping[str, str] | None) -> Selector:
    """labels.SelectorFromSet: every key must equal its value; an empty set matches all."""
    return as_selector(dict(labels or {}))


def merged(selector: Selector, labels: Mapping[str, str]) -> Selector:
    """The selector plus `key in (value)` for each label (matchLabelKeys merging)."""
    extra = tuple(Requirement(k, "in", (v,)) for k, v in sorted(labels.items()))
    return Selector(selector.requirements + extra, selector.nothing)


def _requirements(exprs: Iterable[Obj]) -> list[Requirement] | None:
    """NodeSelectorRequirements as label requirements; None if one is malformed."""
    out = []
    for expr in exprs:
        op = _NODE_OPERATORS.get(expr.get("operator", ""))
        values = tuple(expr.get("values") or ())
        if op is None or (op in ("gt", "lt") and len(values) != 1):
            return None
        out.append(Requirement(expr.get("key", ""), op, values))
    return out


def node_selector_term_matches(term: Obj, node: Obj) -> bool:
    """nodeSelectorTerm.match: an empty term matches nothing; labels and fields ANDed."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = (node.get("metadata") or {}).get("labels") or {}
    label_reqs, field_reqs = _requirements(exprs), _requirements(fields)
    if label_reqs is None or field_reqs is None:
        return False
    if not all(r.matches(labels) for r in label_reqs):
        return False
    node_fields = {NODE_NAME_FIELD: (node.get("metadata") or {}).get("name", "")}
    for req in field_reqs:
        if req.key != NODE_NAME_FIELD or req.operator not in ("in", "notin") or not req.matches(node_fields):
            return False
    return True


def node_selector_matches(node_selector: Obj | None, node: Obj) -> bool:
    """A v1.NodeSelector: its terms are ORed; no terms matches no node."""
    terms = (node_selector or {}).get("nodeSelectorTerms") or []
    return any(node_selector_term_matches(t, node) for t in terms)


def required_node_affinity_matches(pod: Obj, node: Obj) -> bool:
    """GetRequiredNodeAffinity(pod).Match(node): spec.nodeSelector AND required affinity."""
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    if not selector_from_set(spec.get("nodeSelector")).matches(labels):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    return required is None or node_selector_matches(required, node)


def preferred_node_affinity_score(terms: Iterable[Obj], node: Obj) -> int:
    """PreferredSchedulingTerms.Score: the summed weights of the terms the node matches."""
    total = 0
    for term in terms:
        weight = int(term.get("weight") or 0)
        if weight and node_selector_term_matches(term.get("preference") or {}, node):
            total += weight
    return total


def toleration_tolerates(toleration: Obj, taint: Obj) -> bool:
    """v1.Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    if operator == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerations_tolerate(tolerations: Iterable[Obj] | None, taint: Obj) -> bool:
    return any(toleration_tolerates(t, taint) for t in tolerations or ())


def find_untolerated_taint(taints: Iterable[Obj] | None, tolerations: Iterable[Obj] | None,
                           effects: frozenset[str] = frozenset({"NoSchedule", "NoExecute"})) -> Obj | None:
    """FindMatchingUntoleratedTaint: the first taint (in node order) with one of `effects`
    that no toleration tolerates."""
    tolerations = list(tolerations or ())
    for taint in taints or ():
        if taint.get("effect") in effects and not tolerations_tolerate(tolerations, taint):
            return taint
    return None
