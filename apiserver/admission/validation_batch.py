"""batch/v1: Job and CronJob validation.

Mirrors pkg/apis/batch/validation and the Job REST strategy, which generates the
selector and the `batch.kubernetes.io/controller-uid` / `job-name` template labels right
before validating a new Job (so a copy is generated here too). A Job's pod template must
use restartPolicy Never or OnFailure; the famous message is
`spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"`.
After creation a Job's selector, completions and template are frozen (a suspended Job
that never started may still change its scheduling directives).
"""

from __future__ import annotations

import copy
from typing import Any

from apiserver.admission.defaults_batch import JOB_LABELS, generate_job_selector
from apiserver.admission.validation_cron import CronError, parse_standard, time_zone_error
from apiserver.admission.validation_meta import (
    selector_is_valid,
    selector_matches,
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from apiserver.admission.validation_names import is_dns1123_label, max_len_error, name_is_dns_subdomain
from apiserver.admission.validation_pod import validate_pod_template_spec
from apiserver.admission.validation_util import (
    IMMUTABLE,
    as_dict,
    as_int,
    as_str,
    go_label_selector,
    go_string_map,
    immutable,
    invalid_go,
    key,
    nonnegative,
)
from apiserver.errors import FieldError, invalid, not_supported, required

_SCHEDULING_FIELDS = ("nodeSelector", "tolerations", "affinity", "schedulingGates")


def _generated_selector(job: dict[str, Any]) -> list[FieldError]:
    spec = as_dict(job.get("spec"))
    if spec.get("manualSelector") is True or not isinstance(spec.get("selector"), dict):
        return []
    meta = as_dict(job.get("metadata"))
    uid, name = as_str(meta.get("uid")), as_str(meta.get("name"))
    errs = [] if uid else [required("metadata.uid", "")]
    labels = as_dict(as_dict(as_dict(spec.get("template")).get("metadata")).get("labels"))
    expected = {"controller-uid": uid, "job-name": name,
                JOB_LABELS["uid"]: uid, JOB_LABELS["name"]: name}
    for label, value in expected.items():
        path = key("spec.template.metadata.labels", label)
        if label not in labels:
            errs.append(required(path, f"must be '{value}'"))
        elif labels[label] != value:
            errs.append(invalid_go(path, go_string_map(labels), f"must be '{value}'"))
    if selector_is_valid(spec["selector"]) and not selector_matches(spec["selector"], expected):
        errs.append(invalid_go("spec.selector", go_label_selector(spec["selector"]), "`selector` not auto-generated"))
    return errs


def _restart_policy(template: dict[str, Any], path: str, has_failure_policy: bool) -> list[FieldError]:
    policy = as_str(as_dict(template.get("spec")).get("restartPolicy"))
    if policy in ("Always", ""):
        return [required(path, 'valid values: "OnFailure", "Never"')]
    if policy not in ("OnFailure", "Never"):
        return [not_supported(path, policy, ["OnFailure", "Never"])]
    if has_failure_policy and policy != "Never":
        return [invalid(path, policy, 'only "Never" is supported when podFailurePolicy is specified')]
    return []


def _job_spec_fields(spec: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for field in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
                  "backoffLimitPerIndex", "maxFailedIndexes"):
        errs += nonnegative(spec.get(field), f"{path}.{field}")
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        errs.append(not_supported(f"{path}.completionMode", mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed" and spec.get("completions") is None:
        errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
    if mode != "Indexed":
        for field in ("backoffLimitPerIndex", "maxFailedIndexes"):
            if spec.get(field) is not None:
                errs.append(invalid(f"{path}.{field}", spec[field], "requires indexed completion mode"))
    policy = spec.get("podReplacementPolicy")
    if policy is not None:
        if spec.get("podFailurePolicy") is not None and policy != "Failed":
            errs.append(not_supported(f"{path}.podReplacementPolicy", policy, ["Failed"]))
        elif policy not in ("Failed", "TerminatingOrFailed"):
            errs.append(not_supported(f"{path}.podReplacementPolicy", policy, ["Failed", "TerminatingOrFailed"]))
    return errs


def validate_job_spec_common(spec: dict[str, Any], path: str) -> list[FieldError]:
    """validateJobSpec: the part shared with CronJob job templates."""
    template = as_dict(spec.get("template"))
    errs = _job_spec_fields(spec, path)
    errs += validate_pod_template_spec(template, f"{path}.template")
    return errs + _restart_policy(template, f"{path}.template.spec.restartPolicy", spec.get("podFailurePolicy") is not None)


def _job_spec(spec: dict[str, Any]) -> list[FieldError]:
    errs = validate_job_spec_common(spec, "spec")
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        errs.append(required("spec.selector", ""))
    else:
        errs += validate_label_selector(selector, "spec.selector")
    labels = as_dict(as_dict(spec.get("template")).get("metadata")).get("labels")
    if (not isinstance(selector, dict) or selector_is_valid(selector)) and not selector_matches(selector, labels):
        errs.append(invalid_go("spec.template.metadata.labels", go_string_map(labels),
                               "`selector` does not match template `labels`"))
    return errs


def validate_job(job: dict[str, Any]) -> list[FieldError]:
    job = copy.deepcopy(job)
    if as_dict(job.get("spec")).get("manualSelector") is not True:
        generate_job_selector(job)
    meta, spec = as_dict(job.get("metadata")), as_dict(job.get("spec"))
    errs = validate_object_meta(meta, name_is_dns_subdomain) + _generated_selector(job) + _job_spec(spec)
    completions = as_int(spec.get("completions"))
    if spec.get("completionMode") == "Indexed" and completions:
        hostname = f"{as_str(meta.get('name'))}-{completions - 1}"
        if is_dns1123_label(hostname):
            errs.append(invalid("metadata.name", as_str(meta.get("name")),
                                f"will not able to create pod with invalid DNS label: {hostname}"))
    return errs


def _template_update(spec: dict[str, Any], old_spec: dict[str, Any], old_status: dict[str, Any]) -> list[FieldError]:
    template, old_template = as_dict(spec.get("template")), copy.deepcopy(as_dict(old_spec.get("template")))
    if old_spec.get("suspend") is True and not old_status.get("startTime"):
        old_pod, new_pod = as_dict(old_template.setdefault("spec", {})), as_dict(template.get("spec"))
        for field in _SCHEDULING_FIELDS:
            old_pod.pop(field, None)
            if field in new_pod:
                old_pod[field] = new_pod[field]
        meta, old_meta = as_dict(template.get("metadata")), as_dict(old_template.setdefault("metadata", {}))
        for field in ("labels", "annotations"):
            old_meta.pop(field, None)
            if field in meta:
                old_meta[field] = meta[field]
    if template == old_template:
        return []
    return [invalid_go("spec.template", "core.PodTemplateSpec{...}", IMMUTABLE)]


def validate_job_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata")) + _job_spec(spec)
    if spec.get("completionMode") != "Indexed":
        errs += immutable(spec.get("completions"), old_spec.get("completions"), "spec.completions")
    elif spec.get("completions") != old_spec.get("completions") and spec.get("completions") != spec.get("parallelism"):
        errs.append(invalid("spec.completions", spec.get("completions"), "can only be modified in tandem with spec.parallelism"))
    if spec.get("selector") != old_spec.get("selector"):
        errs.append(invalid_go("spec.selector", go_label_selector(spec.get("selector")), IMMUTABLE))
    errs += _template_update(spec, old_spec, as_dict(old.get("status")))
    for field in ("completionMode", "backoffLimitPerIndex", "managedBy"):
        errs += immutable(spec.get(field), old_spec.get(field), f"spec.{field}")
    for field in ("podFailurePolicy", "successPolicy"):
        if spec.get(field) != old_spec.get(field):
            errs.append(invalid_go(f"spec.{field}", "&batch.PodFailurePolicy{...}" if field == "podFailurePolicy"
                                   else "&batch.SuccessPolicy{...}", IMMUTABLE))
    return errs


def _cron_job_spec(spec: dict[str, Any], old_spec: dict[str, Any] | None) -> list[FieldError]:
    errs: list[FieldError] = []
    schedule = as_str(spec.get("schedule"))
    if not schedule:
        errs.append(required("spec.schedule", ""))
    else:
        try:
            parse_standard(schedule)
        except CronError as err:
            errs.append(invalid("spec.schedule", schedule, str(err)))
        allow_tz = old_spec is not None and "TZ" in as_str(old_spec.get("schedule"))
        if allow_tz and "TZ" in schedule and spec.get("timeZone") is not None:
            errs.append(invalid("spec.schedule", schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
        elif not allow_tz and "TZ" in schedule:
            errs.append(invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    errs += nonnegative(spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds")
    zone = spec.get("timeZone")
    if isinstance(zone, str) and (old_spec is None or old_spec.get("timeZone") != zone):
        problem = time_zone_error(zone)
        if problem:
            errs.append(invalid("spec.timeZone", zone, problem))
    policy = as_str(spec.get("concurrencyPolicy"))
    if not policy:
        errs.append(required("spec.concurrencyPolicy", ""))
    elif policy not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"]))
    job_spec = as_dict(as_dict(spec.get("jobTemplate")).get("spec"))
    errs += validate_job_spec_common(job_spec, "spec.jobTemplate.spec")
    if job_spec.get("selector") is not None:
        errs.append(invalid_go("spec.jobTemplate.spec.selector", go_label_selector(job_spec["selector"]),
                               "`selector` will be auto-generated"))
    if job_spec.get("manualSelector") is True:
        errs.append(not_supported("spec.jobTemplate.spec.manualSelector", True, ["nil", "false"]))
    for field in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        errs += nonnegative(spec.get(field), f"spec.{field}")
    return errs


def validate_cron_job(cj: dict[str, Any]) -> list[FieldError]:
    meta = as_dict(cj.get("metadata"))
    errs = validate_object_meta(meta, name_is_dns_subdomain) + _cron_job_spec(as_dict(cj.get("spec")), None)
    name = as_str(meta.get("name"))
    if len(name) > 52:
        # The controller appends an 11-character "-<timestamp>" to name its Jobs.
        errs.append(invalid("metadata.name", name, max_len_error(52)))
    return errs


def validate_cron_job_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    return errs + _cron_job_spec(as_dict(new.get("spec")), as_dict(old.get("spec")))
