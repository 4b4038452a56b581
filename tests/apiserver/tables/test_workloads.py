"""apps/v1 and batch/v1 printers: deployments, replica sets, stateful sets, daemon sets,
controller revisions, jobs and cron jobs."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.tables import printer_for
from tests.apiserver.tables.helpers import NOW, ago, by_name, meta

TEMPLATE = {
    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}
}


def deployment(
    replicas: int | None = 3, selector: dict[str, Any] | None = None, **status: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": selector or {"matchLabels": {"app": "web"}}, "template": TEMPLATE}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"metadata": meta("web", age={"hours": 3}), "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            deployment(readyReplicas=3, updatedReplicas=3, availableReplicas=3),
            ["web", "3/3", 3, 3, "3h", "app,log", "nginx:1.27,busybox", "app=web"],
            id="rolled-out",
        ),
        pytest.param(
            deployment(replicas=None),
            ["web", "0/1", 0, 0, "3h", "app,log", "nginx:1.27,busybox", "app=web"],
            id="new-defaults-one",
        ),
        pytest.param(
            deployment(0),
            ["web", "0/0", 0, 0, "3h", "app,log", "nginx:1.27,busybox", "app=web"],
            id="scaled-to-zero",
        ),
        pytest.param(
            deployment(
                2,
                {
                    "matchLabels": {"tier": "fe", "app": "web"},
                    "matchExpressions": [
                        {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                        {"key": "canary", "operator": "DoesNotExist"},
                    ],
                },
                readyReplicas=1,
                updatedReplicas=2,
                availableReplicas=1,
            ),
            [
                "web",
                "1/2",
                2,
                1,
                "3h",
                "app,log",
                "nginx:1.27,busybox",
                "app=web,!canary,env in (dev,prod),tier=fe",
            ],
            id="selector-sorted-by-key",
        ),
        pytest.param(
            deployment(1, {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}),
            ["web", "0/1", 0, 0, "3h", "app,log", "nginx:1.27,busybox", "<invalid>"],
            id="invalid-selector",
        ),
    ],
)
def test_deployment_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    assert printer_for("apps", "Deployment").cells(obj, NOW) == expected


def test_deployment_columns() -> None:
    assert by_name(printer_for("apps", "Deployment").columns) == [
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Up-to-date", "string", 0),
        ("Available", "string", 0),
        ("Age", "string", 0),
        ("Containers", "string", 1),
        ("Images", "string", 1),
        ("Selector", "string", 1),
    ]


@pytest.mark.parametrize(
    ("group", "kind", "obj", "expected"),
    [
        pytest.param(
            "apps",
            "ReplicaSet",
            {
                "metadata": meta("web-5d4f"),
                "spec": {
                    "replicas": 3,
                    "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f"}},
                    "template": TEMPLATE,
                },
                "status": {"replicas": 3, "readyReplicas": 2},
            },
            ["web-5d4f", 3, 3, 2, "5m", "app,log", "nginx:1.27,busybox", "app=web,pod-template-hash=5d4f"],
            id="replicaset",
        ),
        pytest.param(
            "apps",
            "StatefulSet",
            {
                "metadata": meta("db"),
                "spec": {"replicas": 3, "template": TEMPLATE},
                "status": {"readyReplicas": 1},
            },
            ["db", "1/3", "5m", "app,log", "nginx:1.27,busybox"],
            id="statefulset",
        ),
        pytest.param(
            "apps",
            "DaemonSet",
            {
                "metadata": meta("proxy"),
                "spec": {
                    "selector": {"matchLabels": {"k8s-app": "proxy"}},
                    "template": {"spec": {**TEMPLATE["spec"], "nodeSelector": {"kubernetes.io/os": "linux"}}},
                },
                "status": {
                    "desiredNumberScheduled": 2,
                    "currentNumberScheduled": 2,
                    "numberReady": 1,
                    "updatedNumberScheduled": 2,
                    "numberAvailable": 1,
                },
            },
            [
                "proxy",
                2,
                2,
                1,
                2,
                1,
                "kubernetes.io/os=linux",
                "5m",
                "app,log",
                "nginx:1.27,busybox",
                "k8s-app=proxy",
            ],
            id="daemonset",
        ),
        pytest.param(
            "apps",
            "DaemonSet",
            {"metadata": meta("proxy"), "spec": {"template": {"spec": {"containers": []}}}, "status": {}},
            ["proxy", 0, 0, 0, 0, 0, "<none>", "5m", "", "", "<none>"],
            id="daemonset-empty",
        ),
        pytest.param(
            "apps",
            "ControllerRevision",
            {
                "metadata": meta(
                    "proxy-7c9",
                    ownerReferences=[
                        {
                            "apiVersion": "apps/v1",
                            "kind": "DaemonSet",
                            "name": "proxy",
                            "controller": True,
                            "uid": "u",
                        }
                    ],
                ),
                "revision": 2,
            },
            ["proxy-7c9", "daemonset.apps/proxy", 2, "5m"],
            id="controllerrevision",
        ),
        pytest.param(
            "apps",
            "ControllerRevision",
            {"metadata": meta("orphan"), "revision": 1},
            ["orphan", "<none>", 1, "5m"],
            id="controllerrevision-without-controller",
        ),
    ],
)
def test_apps_cells(group: str, kind: str, obj: dict[str, Any], expected: list[Any]) -> None:
    assert printer_for(group, kind).cells(obj, NOW) == expected


def job(
    spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, **metadata: Any
) -> dict[str, Any]:
    body = {
        "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
        "template": TEMPLATE,
        **(spec or {}),
    }
    return {"metadata": meta("pi", age={"minutes": 8}, **metadata), "spec": body, "status": status or {}}


def condition(type_: str, status: str = "True") -> dict[str, str]:
    return {"type": type_, "status": status}


JOB_CASES = [
    pytest.param(
        job(
            {"completions": 1, "parallelism": 1},
            {
                "succeeded": 1,
                "startTime": ago(minutes=7),
                "completionTime": ago(minutes=6, seconds=15),
                "conditions": [condition("Complete")],
            },
        ),
        ["pi", "Complete", "1/1", "45s", "8m"],
        id="complete",
    ),
    pytest.param(
        job({"completions": 5, "parallelism": 2}, {"succeeded": 2, "active": 2, "startTime": ago(minutes=3)}),
        ["pi", "Running", "2/5", "3m", "8m"],
        id="running-duration-until-now",
    ),
    pytest.param(
        job({"parallelism": 3}, {}), ["pi", "Running", "0/1 of 3", "", "8m"], id="work-queue-parallel"
    ),
    pytest.param(job({}, {"succeeded": 1}), ["pi", "Running", "1/1", "", "8m"], id="work-queue-single"),
    pytest.param(
        job(
            {"completions": 1}, {"failed": 6, "conditions": [condition("FailureTarget"), condition("Failed")]}
        ),
        ["pi", "Failed", "0/1", "", "8m"],
        id="failed-beats-failure-target",
    ),
    pytest.param(
        job({"completions": 1}, {"conditions": [condition("FailureTarget")]}),
        ["pi", "FailureTarget", "0/1", "", "8m"],
        id="failure-target",
    ),
    pytest.param(
        job({"completions": 1, "suspend": True}, {"conditions": [condition("Suspended")]}),
        ["pi", "Suspended", "0/1", "", "8m"],
        id="suspended",
    ),
    pytest.param(
        job({"completions": 1}, {"conditions": [condition("Suspended", "False")]}),
        ["pi", "Running", "0/1", "", "8m"],
        id="resumed",
    ),
    pytest.param(
        job({"completions": 1}, {"conditions": [condition("Suspended")]}, deletionTimestamp=ago(seconds=1)),
        ["pi", "Terminating", "0/1", "", "8m"],
        id="terminating-beats-suspended",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), JOB_CASES)
def test_job_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    cells = printer_for("batch", "Job").cells(obj, NOW)
    assert cells[:5] == expected
    assert cells[5:] == ["app,log", "nginx:1.27,busybox", "batch.kubernetes.io/controller-uid=u1"]


def test_job_columns() -> None:
    assert [c["name"] for c in printer_for("batch", "Job").columns] == [
        "Name",
        "Status",
        "Completions",
        "Duration",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]


def cronjob(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": TEMPLATE}}, **spec}
    return {"metadata": meta("report", age={"days": 3}), "spec": body, "status": status or {}}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            cronjob(
                {"suspend": False}, {"active": [{"name": "report-1"}], "lastScheduleTime": ago(minutes=4)}
            ),
            ["report", "*/5 * * * *", "<none>", "False", 1, "4m", "3d"],
            id="active",
        ),
        pytest.param(
            cronjob({"suspend": True, "timeZone": "Etc/UTC"}),
            ["report", "*/5 * * * *", "Etc/UTC", "True", 0, "<none>", "3d"],
            id="suspended-with-timezone",
        ),
        pytest.param(
            cronjob({}), ["report", "*/5 * * * *", "<none>", "<unset>", 0, "<none>", "3d"], id="suspend-unset"
        ),
    ],
)
def test_cronjob_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    cells = printer_for("batch", "CronJob").cells(obj, NOW)
    assert cells[:7] == expected
    assert cells[7:] == ["app,log", "nginx:1.27,busybox", "<none>"]


def test_cronjob_columns() -> None:
    assert by_name(printer_for("batch", "CronJob").columns)[:7] == [
        ("Name", "string", 0),
        ("Schedule", "string", 0),
        ("Timezone", "string", 0),
        ("Suspend", "boolean", 0),
        ("Active", "integer", 0),
        ("Last Schedule", "string", 0),
        ("Age", "string", 0),
    ]
