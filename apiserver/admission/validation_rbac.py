"""rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

Mirrors pkg/apis/rbac/validation. RBAC names only need to be valid path segments (no
`/` or `%`), so `system:controller:foo` is fine. Rules need verbs, and resource rules
need apiGroups and resources; a binding's roleRef must point at a Role or ClusterRole in
rbac.authorization.k8s.io and can never change (`cannot change roleRef`).
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.validation_meta import (
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from apiserver.admission.validation_names import name_is_dns_subdomain, name_is_path_segment
from apiserver.admission.validation_util import (
    as_dict,
    as_list,
    as_str,
    child,
    go_quote,
    go_string_slice,
    index,
    invalid_go,
)
from apiserver.errors import FieldError, invalid, not_supported, required

RBAC_GROUP = "rbac.authorization.k8s.io"


def validate_policy_rule(rule: dict[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not as_list(rule.get("verbs")):
        errs.append(required(child(path, "verbs"), "verbs must contain at least one value"))
    urls = as_list(rule.get("nonResourceURLs"))
    if urls:
        rendered = go_string_slice(urls)
        if namespaced:
            errs.append(invalid_go(child(path, "nonResourceURLs"), rendered, "namespaced rules cannot apply to non-resource URLs"))
        if as_list(rule.get("apiGroups")) or as_list(rule.get("resources")) or as_list(rule.get("resourceNames")):
            errs.append(invalid_go(child(path, "nonResourceURLs"), rendered,
                                   "rules cannot apply to both regular resources and non-resource URLs"))
        return errs
    if not as_list(rule.get("apiGroups")):
        errs.append(required(child(path, "apiGroups"), "resource rules must supply at least one api group"))
    if not as_list(rule.get("resources")):
        errs.append(required(child(path, "resources"), "resource rules must supply at least one resource"))
    return errs


def _role(obj: dict[str, Any], namespaced: bool) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), name_is_path_segment)
    for i, rule in enumerate(as_list(obj.get("rules"))):
        errs += validate_policy_rule(as_dict(rule), namespaced, index("rules", i))
    aggregation = obj.get("aggregationRule")
    if not namespaced and isinstance(aggregation, dict):
        selectors = as_list(aggregation.get("clusterRoleSelectors"))
        if not selectors:
            errs.append(required("aggregationRule.clusterRoleSelectors",
                                 "at least one clusterRoleSelector required if aggregationRule is non-nil"))
        for i, selector in enumerate(selectors):
            errs += validate_label_selector(as_dict(selector), index("aggregationRule.clusterRoleSelectors", i))
    return errs


def validate_role(obj: dict[str, Any]) -> list[FieldError]:
    return _role(obj, True)


def validate_cluster_role(obj: dict[str, Any]) -> list[FieldError]:
    return _role(obj, False)


def _subject(subject: dict[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    name, kind, group = as_str(subject.get("name")), as_str(subject.get("kind")), as_str(subject.get("apiGroup"))
    errs = [] if name else [required(child(path, "name"), "")]
    if kind == "ServiceAccount":
        if name:
            errs += [invalid(child(path, "name"), name, m) for m in name_is_dns_subdomain(name, False)]
        if group:
            errs.append(not_supported(child(path, "apiGroup"), group, [""]))
        if not namespaced and not as_str(subject.get("namespace")):
            errs.append(required(child(path, "namespace"), ""))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            errs.append(not_supported(child(path, "apiGroup"), group, [RBAC_GROUP]))
    else:
        errs.append(not_supported(child(path, "kind"), kind, ["ServiceAccount", "User", "Group"]))
    return errs


def _binding(obj: dict[str, Any], namespaced: bool) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), name_is_path_segment)
    ref = as_dict(obj.get("roleRef"))
    if as_str(ref.get("apiGroup")) != RBAC_GROUP:
        errs.append(not_supported("roleRef.apiGroup", as_str(ref.get("apiGroup")), [RBAC_GROUP]))
    allowed = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if as_str(ref.get("kind")) not in allowed:
        errs.append(not_supported("roleRef.kind", as_str(ref.get("kind")), allowed))
    name = as_str(ref.get("name"))
    if not name:
        errs.append(required("roleRef.name", ""))
    else:
        errs += [invalid("roleRef.name", name, m) for m in name_is_path_segment(name, False)]
    for i, subject in enumerate(as_list(obj.get("subjects"))):
        errs += _subject(as_dict(subject), namespaced, index("subjects", i))
    return errs


def validate_role_binding(obj: dict[str, Any]) -> list[FieldError]:
    return _binding(obj, True)


def validate_cluster_role_binding(obj: dict[str, Any]) -> list[FieldError]:
    return _binding(obj, False)


def _go_role_ref(ref: dict[str, Any]) -> str:
    return ("rbac.RoleRef{APIGroup:" + go_quote(as_str(ref.get("apiGroup"))) + ", Kind:"
            + go_quote(as_str(ref.get("kind"))) + ", Name:" + go_quote(as_str(ref.get("name"))) + "}")


def _binding_update(new: dict[str, Any], old: dict[str, Any], namespaced: bool) -> list[FieldError]:
    errs = _binding(new, namespaced) + validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    if as_dict(new.get("roleRef")) != as_dict(old.get("roleRef")):
        errs.append(invalid_go("roleRef", _go_role_ref(as_dict(new.get("roleRef"))), "cannot change roleRef"))
    return errs


def validate_role_binding_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return _binding_update(new, old, True)


def validate_cluster_role_binding_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return _binding_update(new, old, False)


def validate_role_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_role(new) + validate_object_meta_update(new.get("metadata"), old.get("metadata"))


def validate_cluster_role_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    return validate_cluster_role(new) + validate_object_meta_update(new.get("metadata"), old.get("metadata"))
