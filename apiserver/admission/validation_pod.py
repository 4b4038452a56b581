"""PodSpec, PodTemplateSpec and Pod validation (create and update).

Mirrors ValidatePodSpec / ValidatePodTemplateSpec / ValidatePodCreate / ValidatePodUpdate
of the core group, checking fields in the same order. Pod templates embedded in
workloads are validated by `validate_pod_template_spec` with the workload's path
(`spec.template`), so errors read `spec.template.spec.containers[0].image: Required value`
exactly as for a Deployment in a real cluster. A running Pod's spec is immutable except
for container images, activeDeadlineSeconds and added tolerations.
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.validation_containers import (
    dns_label,
    validate_containers,
    validate_init_containers,
)
from apiserver.admission.validation_meta import (
    validate_annotations,
    validate_label_name,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from apiserver.admission.validation_names import (
    inclusive_range_error,
    is_label_value,
    is_qualified_name,
    is_valid_id,
    name_is_dns_subdomain,
)
from apiserver.admission.validation_util import as_dict, as_int, as_list, as_str, child, index, spec_diff
from apiserver.admission.validation_volumes import validate_volumes
from apiserver.errors import FieldError, duplicate, forbidden, invalid, not_supported, required

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
_MAX_INT32 = 2**31 - 1
UPDATABLE_POD_FIELDS = ",".join([
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
])


def _enum(value: Any, path: str, allowed: list[str]) -> list[FieldError]:
    text = as_str(value)
    if not text:
        return [required(path, "")]
    return [] if text in allowed else [not_supported(path, text, allowed)]


def validate_tolerations(tolerations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, tol in enumerate(as_list(tolerations)):
        tol, item = as_dict(tol), index(path, i)
        tol_key, operator = as_str(tol.get("key")), as_str(tol.get("operator"))
        value, effect = as_str(tol.get("value")), as_str(tol.get("effect"))
        if tol_key:
            errs += validate_label_name(tol_key, child(item, "key"))
        if not tol_key and operator != "Exists":
            errs.append(invalid(child(item, "operator"), operator, "operator must be Exists when `key` is empty, "
                                                                  'which means "match all values and all keys"'))
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(child(item, "effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if operator in ("Equal", ""):
            msgs = is_label_value(value)
            if msgs:
                errs.append(invalid(child(item, "operator"), value, ";".join(msgs)))
        elif operator == "Exists":
            if value:
                errs.append(invalid(child(item, "operator"), value, "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(child(item, "operator"), operator, ["Equal", "Exists"]))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(not_supported(child(item, "effect"), effect, TAINT_EFFECTS))
    return errs


def _pod_security_context(sc: Any, spec: dict[str, Any], path: str) -> list[FieldError]:
    if not isinstance(sc, dict):
        return []
    errs: list[FieldError] = []
    for field in ("fsGroup", "runAsUser", "runAsGroup"):
        value = as_int(sc.get(field))
        if value is not None:
            errs += [invalid(child(path, field), value, msg) for msg in is_valid_id(value)]
    for i, gid in enumerate(as_list(sc.get("supplementalGroups"))):
        number = as_int(gid) or 0
        errs += [invalid(index(child(path, "supplementalGroups"), i), number, m) for m in is_valid_id(number)]
    if spec.get("shareProcessNamespace") is True and spec.get("hostPID") is True:
        errs.append(invalid(child(path, "shareProcessNamespace"), True,
                            "ShareProcessNamespace and HostPID cannot both be enabled"))
    return errs


def _affinity(affinity: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for kind in ("podAffinity", "podAntiAffinity"):
        rules = as_dict(as_dict(affinity).get(kind))
        term_path = child(path, kind, "requiredDuringSchedulingIgnoredDuringExecution")
        for i, term in enumerate(as_list(rules.get("requiredDuringSchedulingIgnoredDuringExecution"))):
            term = as_dict(term)
            errs += validate_label_selector(term.get("labelSelector"), child(index(term_path, i), "labelSelector"))
            if not as_str(term.get("topologyKey")):
                errs.append(required(child(index(term_path, i), "topologyKey"), "can not be empty"))
    return errs


def _topology_spread(constraints: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    items = [as_dict(c) for c in as_list(constraints)]
    for i, con in enumerate(items):
        item = index(path, i)
        skew = as_int(con.get("maxSkew")) or 0
        if skew <= 0:
            errs.append(invalid(child(item, "maxSkew"), skew, "must be greater than zero"))
        if not as_str(con.get("topologyKey")):
            errs.append(required(child(item, "topologyKey"), "can not be empty"))
        action = as_str(con.get("whenUnsatisfiable"))
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(not_supported(child(item, "whenUnsatisfiable"), action, ["DoNotSchedule", "ScheduleAnyway"]))
        pair = (con.get("topologyKey"), con.get("whenUnsatisfiable"))
        if any((o.get("topologyKey"), o.get("whenUnsatisfiable")) == pair for o in items[i + 1:]):
            errs.append(duplicate(child(item, "{topologyKey, whenUnsatisfiable}"), f"{{{pair[0]}, {pair[1]}}}"))
        errs += validate_label_selector(con.get("labelSelector"), child(item, "labelSelector"))
    return errs


def _dns_config(spec: dict[str, Any], path: str) -> list[FieldError]:
    config = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if not isinstance(config, dict):
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not as_list(config.get("nameservers")):
            return [required(child(path, "nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None")]
    return []


def _names(spec: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for field in ("serviceAccountName", "nodeName"):
        value = as_str(spec.get(field))
        if value:
            errs += [invalid(child(path, field), value, msg) for msg in name_is_dns_subdomain(value, False)]
    deadline = as_int(spec.get("activeDeadlineSeconds"))
    if deadline is not None and not 1 <= deadline <= _MAX_INT32:
        errs.append(invalid(child(path, "activeDeadlineSeconds"), deadline, inclusive_range_error(1, _MAX_INT32)))
    for field in ("hostname", "subdomain"):
        if as_str(spec.get(field)):
            errs += dns_label(as_str(spec.get(field)), child(path, field))
    errs += validate_tolerations(spec.get("tolerations"), child(path, "tolerations"))
    for field in ("priorityClassName",):
        value = as_str(spec.get(field))
        if value:
            errs += [invalid(child(path, field), value, msg) for msg in name_is_dns_subdomain(value, False)]
    if isinstance(spec.get("runtimeClassName"), str):
        name = spec["runtimeClassName"]
        errs += [invalid(child(path, "runtimeClassName"), name, m) for m in name_is_dns_subdomain(name, False)]
    if spec.get("preemptionPolicy") is not None:
        errs += _enum(spec["preemptionPolicy"], child(path, "preemptionPolicy"), ["PreemptLowerPriority", "Never"])
    os_spec = spec.get("os")
    if isinstance(os_spec, dict):
        name = as_str(os_spec.get("name"))
        if not name:
            errs.append(required(child(path, "os", "name"), "cannot be empty"))
        elif name not in ("linux", "windows"):
            errs.append(not_supported(child(path, "os"), name, ["linux", "windows"]))
    return errs


def validate_pod_spec(spec: Any, path: str, *, is_pod: bool = False) -> list[FieldError]:
    spec = as_dict(spec)
    errs: list[FieldError] = []
    grace = as_int(spec.get("terminationGracePeriodSeconds"))
    if grace is None:
        errs.append(required(child(path, "terminationGracePeriodSeconds"), ""))
    volumes, vol_errs = validate_volumes(spec.get("volumes"), child(path, "volumes"))
    errs += vol_errs
    errs += validate_containers(spec.get("containers"), volumes, child(path, "containers"), grace)
    errs += validate_init_containers(spec.get("initContainers"), spec.get("containers"), volumes,
                                     child(path, "initContainers"), grace)
    if spec.get("hostNetwork") is True:
        for ci, ctr in enumerate(as_list(spec.get("containers"))):
            for pi, port in enumerate(as_list(as_dict(ctr).get("ports"))):
                host, cport = as_int(as_dict(port).get("hostPort")) or 0, as_int(as_dict(port).get("containerPort"))
                if (is_pod or host != 0) and host != cport:
                    errs.append(invalid(child(index(child(index(child(path, "containers"), ci), "ports"), pi),
                                              "hostPort"), host, "must match `containerPort` when `hostNetwork` is true"))
    errs += _enum(spec.get("restartPolicy"), child(path, "restartPolicy"), RESTART_POLICIES)
    errs += _enum(spec.get("dnsPolicy"), child(path, "dnsPolicy"), DNS_POLICIES)
    errs += validate_labels(spec.get("nodeSelector"), child(path, "nodeSelector"))
    errs += _pod_security_context(spec.get("securityContext"), spec, child(path, "securityContext"))
    errs += _affinity(spec.get("affinity"), child(path, "affinity"))
    errs += _dns_config(spec, child(path, "dnsConfig"))
    for i, gate in enumerate(as_list(spec.get("readinessGates"))):
        ctype = as_str(as_dict(gate).get("conditionType"))
        errs += [invalid(child(index(child(path, "readinessGates"), i), "conditionType"), ctype, m)
                 for m in is_qualified_name(ctype)]
    errs += _topology_spread(spec.get("topologySpreadConstraints"), child(path, "topologySpreadConstraints"))
    return errs + _names(spec, path)


def validate_pod_template_spec(template: Any, path: str) -> list[FieldError]:
    template = as_dict(template)
    meta = as_dict(template.get("metadata"))
    errs = validate_labels(meta.get("labels"), child(path, "labels"))
    errs += validate_annotations(meta.get("annotations"), child(path, "annotations"))
    errs += validate_pod_spec(template.get("spec"), child(path, "spec"))
    if as_list(as_dict(template.get("spec")).get("ephemeralContainers")):
        errs.append(forbidden(child(path, "spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
    return errs


def _pod_metadata_and_spec(pod: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(pod.get("metadata"), name_is_dns_subdomain)
    spec = as_dict(pod.get("spec"))
    errs += validate_pod_spec(spec, "spec", is_pod=True)
    for field in ("containers", "initContainers"):
        for i, ctr in enumerate(as_list(spec.get(field))):
            image = as_str(as_dict(ctr).get("image"))
            if image != image.strip():
                errs.append(invalid(child(index(child("spec", field), i), "image"), image,
                                    "must not have leading or trailing whitespace"))
    return errs


def validate_pod(pod: dict[str, Any]) -> list[FieldError]:
    errs = _pod_metadata_and_spec(pod)
    spec = as_dict(pod.get("spec"))
    if as_list(spec.get("ephemeralContainers")):
        errs.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if as_str(spec.get("nodeName")) and as_list(spec.get("schedulingGates")):
        errs.append(forbidden("spec.nodeName", "cannot be set until all schedulingGates have been cleared"))
    return errs


def _only_added_tolerations(new: list[Any], old: list[Any]) -> list[FieldError]:
    def strip(tol: Any) -> dict[str, Any]:
        return {k: v for k, v in as_dict(tol).items() if k != "tolerationSeconds"}
    for tol in old:
        if not any(strip(tol) == strip(candidate) for candidate in new):
            return [forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds")]
    return validate_tolerations(new, "spec.tolerations")


def validate_pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata")) + _pod_metadata_and_spec(new)
    spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    for field in ("containers", "initContainers"):
        news, olds = as_list(spec.get(field)), as_list(old_spec.get(field))
        if len(news) != len(olds):
            return errs + [forbidden(child("spec", field), "pod updates may not add or remove containers")]
        for i, ctr in enumerate(news):
            image = as_str(as_dict(ctr).get("image"))
            if not image:
                errs.append(required(child(index(child("spec", field), i), "image"), ""))
    deadline, old_deadline = as_int(spec.get("activeDeadlineSeconds")), as_int(old_spec.get("activeDeadlineSeconds"))
    if deadline is not None:
        if not 0 <= deadline <= _MAX_INT32:
            return errs + [invalid("spec.activeDeadlineSeconds", deadline, inclusive_range_error(0, _MAX_INT32))]
        if old_deadline is not None and old_deadline < deadline:
            return errs + [invalid("spec.activeDeadlineSeconds", deadline, "must be less than or equal to previous value")]
    elif old_deadline is not None:
        errs.append(invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    errs += _only_added_tolerations(as_list(spec.get("tolerations")), as_list(old_spec.get("tolerations")))
    munged = _munge_pod_spec(spec, old_spec)
    if munged != old_spec:
        errs.append(forbidden("spec", f"pod updates may not change fields other than {UPDATABLE_POD_FIELDS}\n"
                              + spec_diff("core.PodSpec", old_spec, munged)))
    return errs


def _munge_pod_spec(spec: dict[str, Any], old_spec: dict[str, Any]) -> dict[str, Any]:
    """The new spec with the updatable fields taken from the old one."""
    munged = dict(spec)
    for field in ("containers", "initContainers"):
        if field in munged:
            olds = as_list(old_spec.get(field))
            munged[field] = [_with_old_image(c, olds[i]) if i < len(olds) else c
                             for i, c in enumerate(as_list(munged[field]))]
    for field in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        munged.pop(field, None)
        if field in old_spec:
            munged[field] = old_spec[field]
    old_grace = as_int(old_spec.get("terminationGracePeriodSeconds"))
    if old_grace is not None and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    return munged


def _with_old_image(container: Any, old: Any) -> dict[str, Any]:
    result, old = dict(as_dict(container)), as_dict(old)
    result.pop("image", None)
    if "image" in old:
        result["image"] = old["image"]
    return result
