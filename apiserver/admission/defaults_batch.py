"""Defaulting of batch/v1 Jobs and CronJobs, and the Job selector generation.

Mirrors pkg/apis/batch/v1/defaults.go (completions/parallelism 1 when both are unset,
backoffLimit 6, completionMode NonIndexed, suspend false, manualSelector false,
podReplacementPolicy TerminatingOrFailed; CronJob concurrencyPolicy Allow, history
limits 3 and 1) and the Job REST strategy's generateSelector: a new Job without
`manualSelector: true` selects
its pods by `batch.kubernetes.io/controller-uid=<uid>`, and its template gets that label,
`batch.kubernetes.io/job-name` and the legacy `controller-uid` / `job-name` labels.
Generation needs the Job's uid, so it happens only once the registry has assigned one.
Note that a CronJob's jobTemplate gets pod template defaults but not Job defaults.
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.defaults_pod import _dict, default_pod_template, default_template_metadata

JOB_LABELS = {"uid": "batch.kubernetes.io/controller-uid", "name": "batch.kubernetes.io/job-name"}
_MAX_INT32 = 2**31 - 1


def generate_job_selector(job: dict[str, Any]) -> None:
    """generateSelector: the selector and template labels that tie pods to this Job."""
    meta = job.setdefault("metadata", {})
    uid, name = str(meta.get("uid") or ""), str(meta.get("name") or "")
    spec = job.setdefault("spec", {})
    template = spec.setdefault("template", {})
    tmeta = template.setdefault("metadata", {})
    labels = tmeta.get("labels") if isinstance(tmeta.get("labels"), dict) else {}
    for label in ("job-name", JOB_LABELS["name"]):
        labels.setdefault(label, name)
    for label in ("controller-uid", JOB_LABELS["uid"]):
        labels.setdefault(label, uid)
    tmeta["labels"] = labels
    selector = spec.get("selector") if isinstance(spec.get("selector"), dict) else {}
    match = selector.get("matchLabels") if isinstance(selector.get("matchLabels"), dict) else {}
    match.setdefault(JOB_LABELS["uid"], uid)
    selector["matchLabels"] = match
    spec["selector"] = selector


def _default_job_spec(spec: dict[str, Any]) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = _MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    failure_policy = _dict(spec, "podFailurePolicy")
    for rule in (failure_policy or {}).get("rules") or []:
        for pattern in rule.get("onPodConditions") or [] if isinstance(rule, dict) else []:
            if isinstance(pattern, dict) and not pattern.get("status"):
                pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if failure_policy is not None else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False


def _labels_from_template(job: dict[str, Any]) -> None:
    labels = (_dict(_dict(job["spec"], "template") or {}, "metadata") or {}).get("labels")
    meta = job.setdefault("metadata", {})
    if labels and not meta.get("labels"):
        meta["labels"] = dict(labels)


def default_job(job: dict[str, Any]) -> None:
    spec = _dict(job, "spec")
    if spec is None:
        spec = job["spec"] = {}
    _default_job_spec(spec)
    _labels_from_template(job)
    meta = _dict(job, "metadata") or {}
    creating = not meta.get("resourceVersion") and meta.get("uid")
    if creating and spec.get("manualSelector") is not True and spec.get("selector") is None:
        generate_job_selector(job)
        # Decoding the stored Job defaults its labels from the now-labelled template.
        _labels_from_template(job)
    default_pod_template(_dict(spec, "template"))
    if _dict(job, "status") is None:
        job["status"] = {}


def default_cron_job(cj: dict[str, Any]) -> None:
    spec = _dict(cj, "spec")
    if spec is None:
        spec = cj["spec"] = {}
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_template = _dict(spec, "jobTemplate")
    if job_template is None:
        job_template = spec["jobTemplate"] = {}
    default_template_metadata(job_template)
    job_spec = _dict(job_template, "spec")
    if job_spec is None:
        job_spec = job_template["spec"] = {}
    default_pod_template(_dict(job_spec, "template"))
    if _dict(cj, "status") is None:
        cj["status"] = {}
