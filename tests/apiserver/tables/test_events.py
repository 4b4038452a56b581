"""`kubectl get events`: LAST SEEN TYPE REASON OBJECT MESSAGE, for both Event APIs."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.tables import printer_for
from tests.apiserver.tables.helpers import NOW, ago, by_name, meta


def test_event_columns_put_wide_ones_last() -> None:
    assert by_name(printer_for("", "Event").columns) == [
        ("Last Seen", "string", 0),
        ("Type", "string", 0),
        ("Reason", "string", 0),
        ("Object", "string", 0),
        ("Subobject", "string", 1),
        ("Source", "string", 1),
        ("Message", "string", 0),
        ("First Seen", "string", 1),
        ("Count", "string", 1),
        ("Name", "string", 1),
    ]
    assert printer_for("events.k8s.io", "Event").columns == printer_for("", "Event").columns


CORE_EVENT = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": meta("web.17f"),
    "involvedObject": {
        "kind": "Pod",
        "name": "web",
        "namespace": "default",
        "fieldPath": "spec.containers{app}",
    },
    "reason": "BackOff",
    "message": "Back-off restarting failed container\n",
    "type": "Warning",
    "source": {"component": "kubelet", "host": "node-1"},
    "firstTimestamp": ago(minutes=30),
    "lastTimestamp": ago(seconds=40),
    "count": 12,
}

CASES = [
    pytest.param(
        CORE_EVENT,
        [
            "40s",
            "Warning",
            "BackOff",
            "pod/web",
            "spec.containers{app}",
            "kubelet, node-1",
            "Back-off restarting failed container",
            "30m",
            12,
            "web.17f",
        ],
        id="core-event",
    ),
    pytest.param(
        {
            "metadata": meta("x"),
            "involvedObject": {"kind": "Node", "name": "node-1"},
            "reason": "Starting",
            "type": "Normal",
            "eventTime": "2025-03-01T11:58:00.000000Z",
            "reportingComponent": "kube-proxy",
            "reportingController": "kube-proxy",
            "reportingInstance": "kube-proxy-node-1",
        },
        ["2m", "Normal", "Starting", "node/node-1", "", "kube-proxy, kube-proxy-node-1", "", "2m", 1, "x"],
        id="new-style-event-time-only-counts-one",
    ),
    pytest.param(
        {
            "metadata": meta("y"),
            "involvedObject": {"kind": "Deployment"},
            "reason": "ScalingReplicaSet",
            "type": "Normal",
            "eventTime": ago(hours=1),
            "series": {"count": 7, "lastObservedTime": ago(minutes=3)},
        },
        ["3m", "Normal", "ScalingReplicaSet", "deployment", "", "", "", "60m", 7, "y"],
        id="series-reports-its-count-and-last-observation",
    ),
    pytest.param(
        {
            "metadata": meta("z"),
            "involvedObject": {"kind": "Pod", "name": "p"},
            "firstTimestamp": ago(minutes=4),
        },
        ["4m", "", "", "pod/p", "", "", "", "4m", 1, "z"],
        id="last-seen-falls-back-to-first-seen",
    ),
    pytest.param(
        {"metadata": meta("u"), "involvedObject": {"kind": "Pod", "name": "p"}},
        ["<unknown>", "", "", "pod/p", "", "", "", "<unknown>", 1, "u"],
        id="no-timestamps",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), CASES)
def test_core_event_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    assert printer_for("", "Event").cells(obj, NOW) == expected


def test_events_k8s_io_event_prints_like_core_event() -> None:
    obj = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": meta("web.17f"),
        "regarding": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
        "reason": "Pulled",
        "note": "Successfully pulled image",
        "type": "Normal",
        "eventTime": None,
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
        "deprecatedFirstTimestamp": ago(minutes=10),
        "deprecatedLastTimestamp": ago(minutes=1),
        "deprecatedCount": 2,
    }
    assert printer_for("events.k8s.io", "Event").cells(obj, NOW) == [
        "60s",
        "Normal",
        "Pulled",
        "pod/web",
        "spec.containers{app}",
        "kubelet, node-1",
        "Successfully pulled image",
        "10m",
        2,
        "web.17f",
    ]
