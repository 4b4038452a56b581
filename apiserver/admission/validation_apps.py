"""apps/v1 workloads: Deployment, ReplicaSet, StatefulSet, DaemonSet, ControllerRevision.

Mirrors pkg/apis/apps/validation plus the selector-immutability checks the apps REST
strategies add on update. The most common mistake, a selector that does not match the
template labels, reads exactly as in a real cluster:
`spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector`
does not match template `labels``. StatefulSet names are DNS labels (their pods are
named `<name>-<ordinal>` and get that as hostname).
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.validation_meta import (
    selector_is_empty,
    selector_is_valid,
    selector_matches,
    validate_annotations,
    validate_label_selector,
    validate_labels,
    validate_object_meta,
    validate_object_meta_update,
)
from apiserver.admission.validation_names import is_valid_percent, name_is_dns_label, name_is_dns_subdomain
from apiserver.admission.validation_pod import validate_pod_template_spec
from apiserver.admission.validation_util import (
    IMMUTABLE,
    as_dict,
    as_int,
    as_str,
    go_int_or_string,
    go_label_selector,
    go_string_map,
    invalid_go,
    nonnegative,
    not_supported_go,
)
from apiserver.errors import FieldError, forbidden, invalid, not_supported, required

STS_SPEC_FORBIDDEN = ("updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                      "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
_STS_MUTABLE = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds")


# --- int-or-percent fields ------------------------------------------------------------------
def _percent(value: Any) -> int | None:
    if isinstance(value, str) and not is_valid_percent(value):
        return int(value[:-1])
    return None


def int_or_percent_value(value: Any) -> int:
    """getIntOrPercentValue: the percentage number, the integer, or 0 for junk strings."""
    percent = _percent(value)
    if percent is not None:
        return percent
    return as_int(value) or 0


def validate_positive_int_or_percent(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, str):
        return [invalid_go(path, go_int_or_string(value), msg) for msg in is_valid_percent(value)]
    number = as_int(value)
    if number is not None and number < 0:
        return [invalid(path, number, "must be greater than or equal to 0")]
    return []


def not_more_than_100_percent(value: Any, path: str) -> list[FieldError]:
    percent = _percent(value)
    if percent is None or percent <= 100:
        return []
    return [invalid_go(path, go_int_or_string(value), "must not be greater than 100%")]


# --- templates and selectors --------------------------------------------------------------
def _selector(spec: dict[str, Any], kind: str) -> list[FieldError]:
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return [required("spec.selector", "")]
    errs = validate_label_selector(selector, "spec.selector")
    if selector_is_empty(selector):
        errs.append(invalid_go("spec.selector", go_label_selector(selector), f"empty selector is invalid for {kind}"))
    return errs


def _template_matches(spec: dict[str, Any]) -> list[FieldError]:
    """The `selector` does not match template `labels` check; an empty selector is skipped."""
    selector, template = spec.get("selector"), as_dict(spec.get("template"))
    labels = as_dict(template.get("metadata")).get("labels")
    if isinstance(selector, dict) and not selector_is_valid(selector):
        return []
    if selector_is_empty(selector) or selector_matches(selector, labels):
        return []
    return [invalid_go("spec.template.metadata.labels", go_string_map(labels),
                       "`selector` does not match template `labels`")]


def _template_for_controller(spec: dict[str, Any], kind: str) -> list[FieldError]:
    """ValidatePodTemplateSpecForReplicaSet (and its StatefulSet/DaemonSet cousins)."""
    template = spec.get("template")
    if not isinstance(template, dict):
        return [required("spec.template", "")]
    errs = _template_matches(spec) + validate_pod_template_spec(template, "spec.template")
    tpl_spec = as_dict(template.get("spec"))
    policy = as_str(tpl_spec.get("restartPolicy"))
    if policy != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy", policy, ["Always"]))
    if tpl_spec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds", f"activeDeadlineSeconds in {kind} is not Supported"))
    return errs


def _selector_immutable(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    selector, old_selector = as_dict(new.get("spec")).get("selector"), as_dict(old.get("spec")).get("selector")
    if selector == old_selector:
        return []
    return [invalid_go("spec.selector", go_label_selector(selector), IMMUTABLE)]


# --- Deployment / ReplicaSet ----------------------------------------------------------------
def _deployment_strategy(strategy: Any) -> list[FieldError]:
    strategy, path = as_dict(strategy), "spec.strategy"
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [forbidden(f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if kind != "RollingUpdate":
        rendered = f"apps.DeploymentStrategy{{Type:\"{as_str(kind)}\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}}"
        return [not_supported_go(path, rendered, ["Recreate", "RollingUpdate"])]
    if not isinstance(rolling, dict):
        return [required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    errs = validate_positive_int_or_percent(unavailable, f"{path}.rollingUpdate.maxUnavailable")
    errs += validate_positive_int_or_percent(surge, f"{path}.rollingUpdate.maxSurge")
    if int_or_percent_value(unavailable) == 0 and int_or_percent_value(surge) == 0:
        errs.append(invalid_go(f"{path}.rollingUpdate.maxUnavailable", go_int_or_string(unavailable),
                               "may not be 0 when `maxSurge` is 0"))
    return errs + not_more_than_100_percent(unavailable, f"{path}.rollingUpdate.maxUnavailable")


def _selector_and_template(spec: dict[str, Any], kind: str) -> list[FieldError]:
    """Selector checks, then the template when the selector parses (else "invalid label selector")."""
    errs = _selector(spec, "deployment")
    selector = spec.get("selector")
    if isinstance(selector, dict) and not selector_is_valid(selector):
        return errs + [invalid_go("spec.selector", go_label_selector(selector), "invalid label selector")]
    return errs + _template_for_controller(spec, kind)


def _replica_set_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs = nonnegative(spec.get("replicas"), "spec.replicas")
    errs += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    return errs + _selector_and_template(spec, "ReplicaSet")


def validate_deployment(obj: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(obj.get("metadata"), name_is_dns_subdomain) + _deployment_spec(as_dict(obj.get("spec")))


def _deployment_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs = nonnegative(spec.get("replicas"), "spec.replicas")
    errs += _selector_and_template(spec, "ReplicaSet")
    errs += _deployment_strategy(spec.get("strategy"))
    errs += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errs += nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")
    deadline = as_int(spec.get("progressDeadlineSeconds"))
    if deadline is not None:
        errs += nonnegative(deadline, "spec.progressDeadlineSeconds")
        if deadline <= (as_int(spec.get("minReadySeconds")) or 0):
            errs.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    return errs


def validate_deployment_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + _deployment_spec(as_dict(new.get("spec"))) + _selector_immutable(new, old)


def validate_replica_set(obj: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(obj.get("metadata"), name_is_dns_subdomain) + _replica_set_spec(as_dict(obj.get("spec")))


def validate_replica_set_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + _replica_set_spec(as_dict(new.get("spec"))) + _selector_immutable(new, old)


# --- StatefulSet -------------------------------------------------------------------------
def _retention_policy(policy: Any) -> list[FieldError]:
    errs = []
    if isinstance(policy, dict):
        for field in ("whenDeleted", "whenScaled"):
            value = as_str(policy.get(field))
            if value not in ("Retain", "Delete"):
                errs.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{field}", value, ["Retain", "Delete"]))
    return errs


def _sts_update_strategy(strategy: Any) -> list[FieldError]:
    strategy, path = as_dict(strategy), "spec.updateStrategy"
    kind, rolling = as_str(strategy.get("type")), strategy.get("rollingUpdate")
    if not kind:
        return [required(path, "")]
    if kind == "OnDelete":
        if rolling is not None:
            return [invalid_go(f"{path}.rollingUpdate", "&apps.RollingUpdateStatefulSetStrategy{...}",
                               "only allowed for updateStrategy 'RollingUpdate'")]
        return []
    if kind != "RollingUpdate":
        return [invalid_go(path, "apps.StatefulSetUpdateStrategy{...}", "must be 'RollingUpdate' or 'OnDelete'")]
    if not isinstance(rolling, dict):
        return []
    errs = nonnegative(rolling.get("partition"), f"{path}.rollingUpdate.partition")
    unavailable = rolling.get("maxUnavailable")
    if unavailable is not None:
        errs += validate_positive_int_or_percent(unavailable, f"{path}.rollingUpdate.maxUnavailable")
        if int_or_percent_value(unavailable) == 0:
            errs.append(invalid_go(f"{path}.rollingUpdate.maxUnavailable", go_int_or_string(unavailable), "cannot be 0"))
        errs += not_more_than_100_percent(unavailable, f"{path}.rollingUpdate.maxUnavailable")
    return errs


def _stateful_set_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs: list[FieldError] = []
    policy = as_str(spec.get("podManagementPolicy"))
    if not policy:
        errs.append(required("spec.podManagementPolicy", ""))
    elif policy not in ("OrderedReady", "Parallel"):
        errs.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    errs += _sts_update_strategy(spec.get("updateStrategy"))
    errs += _retention_policy(spec.get("persistentVolumeClaimRetentionPolicy"))
    errs += nonnegative(spec.get("replicas"), "spec.replicas") + nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    if isinstance(spec.get("ordinals"), dict):
        errs += nonnegative(spec["ordinals"].get("start"), "spec.ordinals.start")
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        errs.append(required("spec.selector", ""))
    else:
        errs += validate_label_selector(selector, "spec.selector")
        if selector_is_empty(selector):
            errs.append(invalid_go("spec.selector", go_label_selector(selector), "empty selector is invalid for statefulset"))
    template = as_dict(spec.get("template"))
    if isinstance(selector, dict) and not selector_is_valid(selector):
        errs.append(invalid_go("spec.selector", go_label_selector(selector), ""))
    else:
        # Kubernetes does not validate a StatefulSet's pod spec here (its volumeMounts may
        # name volumeClaimTemplates); only the template's labels and annotations.
        meta = as_dict(template.get("metadata"))
        errs += _template_matches(spec) + validate_labels(meta.get("labels"), "spec.template.labels")
        errs += validate_annotations(meta.get("annotations"), "spec.template.annotations")
    if as_str(as_dict(template.get("spec")).get("restartPolicy")) != "Always":
        errs.append(not_supported("spec.template.spec.restartPolicy",
                                  as_str(as_dict(template.get("spec")).get("restartPolicy")), ["Always"]))
    if as_dict(template.get("spec")).get("activeDeadlineSeconds") is not None:
        errs.append(forbidden("spec.template.spec.activeDeadlineSeconds",
                              "activeDeadlineSeconds in StatefulSet is not Supported"))
    return errs


def validate_stateful_set(obj: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(obj.get("metadata"), name_is_dns_label) + _stateful_set_spec(as_dict(obj.get("spec")))


def validate_stateful_set_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata")) + _stateful_set_spec(spec)
    frozen = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
    old_frozen = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
    if frozen != old_frozen:
        errs.append(forbidden("spec", STS_SPEC_FORBIDDEN))
    return errs


# --- DaemonSet ------------------------------------------------------------------------------
def _daemon_set_strategy(strategy: Any) -> list[FieldError]:
    strategy, path = as_dict(strategy), "spec.updateStrategy"
    kind, rolling = strategy.get("type"), strategy.get("rollingUpdate")
    if kind == "OnDelete":
        return []
    if kind != "RollingUpdate":
        return [not_supported_go(path, "apps.DaemonSetUpdateStrategy{...}", ["RollingUpdate", "OnDelete"])]
    if not isinstance(rolling, dict):
        return [required(f"{path}.rollingUpdate", "")]
    unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
    rpath = f"{path}.rollingUpdate"
    errs = validate_positive_int_or_percent(unavailable, f"{rpath}.maxUnavailable")
    errs += validate_positive_int_or_percent(surge, f"{rpath}.maxSurge")
    errs += not_more_than_100_percent(unavailable, f"{rpath}.maxUnavailable")
    errs += not_more_than_100_percent(surge, f"{rpath}.maxSurge")
    has_unavailable, has_surge = int_or_percent_value(unavailable) != 0, int_or_percent_value(surge) != 0
    if has_unavailable and has_surge:
        errs.append(invalid_go(f"{rpath}.maxSurge", go_int_or_string(surge), "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        errs.append(required(f"{rpath}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    return errs


def _daemon_set_spec(spec: dict[str, Any]) -> list[FieldError]:
    selector = spec.get("selector")
    errs = validate_label_selector(selector, "spec.selector")
    labels = as_dict(as_dict(spec.get("template")).get("metadata")).get("labels")
    if (not isinstance(selector, dict) or selector_is_valid(selector)) and not selector_matches(selector, labels):
        errs.append(invalid_go("spec.template.metadata.labels", go_string_map(labels),
                               "`selector` does not match template `labels`"))
    if isinstance(selector, dict) and selector_is_empty(selector):
        errs.append(invalid_go("spec.selector", go_label_selector(selector), "empty selector is invalid for daemonset"))
    errs += _template_for_controller({**spec, "selector": {}}, "DaemonSet")
    errs += nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    errs += _daemon_set_strategy(spec.get("updateStrategy"))
    return errs + nonnegative(spec.get("revisionHistoryLimit"), "spec.revisionHistoryLimit")


def validate_daemon_set(obj: dict[str, Any]) -> list[FieldError]:
    return validate_object_meta(obj.get("metadata"), name_is_dns_subdomain) + _daemon_set_spec(as_dict(obj.get("spec")))


def validate_daemon_set_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + _daemon_set_spec(as_dict(new.get("spec"))) + _selector_immutable(new, old)


def validate_controller_revision(obj: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(obj.get("metadata"), name_is_dns_subdomain)
    if obj.get("data") is None:
        errs.append(required("data", "data is mandatory"))
    return errs + nonnegative(obj.get("revision"), "revision")


def validate_controller_revision_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata")) + validate_controller_revision(new)
    if new.get("data") != old.get("data"):
        errs.append(invalid_go("data", "runtime.RawExtension{...}", IMMUTABLE))
    return errs
