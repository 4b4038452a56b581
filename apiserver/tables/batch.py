"""Printers for batch/v1: Job (STATUS, COMPLETIONS, DURATION) and CronJob.

COMPLETIONS reads "succeeded/completions", or for a work-queue Job without completions
"n/1", or "n/1 of P" when it runs P pods in parallel. DURATION runs from startTime to
completionTime, or to now while the Job is active. STATUS is taken from conditions in
Kubernetes' precedence: Complete, Failed, then Terminating (being deleted), Suspended,
FailureTarget, else Running.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiserver.tables.cells import (
    bool_ptr,
    condition_true,
    container_cells,
    format_label_selector,
    get,
    items,
    mapping,
    meta,
)
from apiserver.tables.duration import human_duration, parse_time, since
from apiserver.tables.printer import (
    Printer,
    age_column,
    column,
    containers_column,
    doc,
    images_column,
    name_column,
)


def _completions(job: dict[str, Any]) -> str:
    spec = mapping(job, "spec")
    succeeded = get(job, "status", "succeeded", default=0)
    if spec.get("completions") is not None:
        return f"{succeeded}/{spec['completions']}"
    parallelism = spec.get("parallelism") or 0
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _duration(job: dict[str, Any], now: datetime) -> str:
    start = parse_time(get(job, "status", "startTime"))
    if start is None:
        return ""
    end = parse_time(get(job, "status", "completionTime"))
    return human_duration((end or now) - start)


def job_status(job: dict[str, Any]) -> str:
    conditions = items(job, "status", "conditions")
    if condition_true(conditions, "Complete"):
        return "Complete"
    if condition_true(conditions, "Failed"):
        return "Failed"
    if meta(job).get("deletionTimestamp"):
        return "Terminating"
    if condition_true(conditions, "Suspended"):
        return "Suspended"
    if condition_true(conditions, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job_cells(job: dict[str, Any], now: datetime) -> list[Any]:
    m = meta(job)
    names, images = container_cells(items(job, "spec", "template", "spec", "containers"))
    return [
        m.get("name", ""),
        job_status(job),
        _completions(job),
        _duration(job, now),
        since(m.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(get(job, "spec", "selector")),
    ]


def job_printer() -> Printer:
    columns = [
        name_column(),
        column("Status", "string", "Status of the job."),
        column("Completions", "string", doc("batch.v1.JobStatus", "succeeded")),
        column("Duration", "string", "Time required to complete the job."),
        age_column(),
        containers_column(),
        images_column(),
        column("Selector", "string", doc("batch.v1.JobSpec", "selector"), priority=1),
    ]
    return Printer(columns, _job_cells)


def _cronjob_cells(cj: dict[str, Any], now: datetime) -> list[Any]:
    m, spec = meta(cj), mapping(cj, "spec")
    last = get(cj, "status", "lastScheduleTime")
    job_spec = mapping(spec, "jobTemplate", "spec")
    names, images = container_cells(items(job_spec, "template", "spec", "containers"))
    return [
        m.get("name", ""),
        spec.get("schedule", ""),
        spec.get("timeZone") if spec.get("timeZone") is not None else "<none>",
        bool_ptr(spec.get("suspend")),
        len(items(cj, "status", "active")),
        "<none>" if last is None else since(last, now),
        since(m.get("creationTimestamp"), now),
        names,
        images,
        format_label_selector(job_spec.get("selector")),
    ]


def cronjob_printer() -> Printer:
    spec, status = "batch.v1.CronJobSpec", "batch.v1.CronJobStatus"
    columns = [
        name_column(),
        column("Schedule", "string", doc(spec, "schedule")),
        column("Timezone", "string", doc(spec, "timeZone")),
        column("Suspend", "boolean", doc(spec, "suspend")),
        column("Active", "integer", doc(status, "active")),
        column("Last Schedule", "string", doc(status, "lastScheduleTime")),
        age_column(),
        containers_column(),
        images_column(),
        column("Selector", "string", doc("batch.v1.JobSpec", "selector"), priority=1),
    ]
    return Printer(columns, _cronjob_cells)
