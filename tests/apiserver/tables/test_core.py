"""core/v1 printers other than Pod and Event: services, nodes, volumes, endpoints, quota..."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.tables import printer_for
from tests.apiserver.tables.helpers import NOW, by_name, meta


def cells(kind: str, obj: dict[str, Any]) -> list[Any]:
    return printer_for("", kind).cells(obj, NOW)


def svc(type_: str | None, **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    body: dict[str, Any] = {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}], **spec}
    if type_:
        body["type"] = type_
    return {"metadata": meta("web"), "spec": body, "status": status}


SERVICE_CASES = [
    pytest.param(
        svc(
            "ClusterIP",
            clusterIP="10.96.0.10",
            clusterIPs=["10.96.0.10"],
            selector={"app": "web", "tier": "fe"},
        ),
        ["web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP", "5m", "app=web,tier=fe"],
        id="cluster-ip",
    ),
    pytest.param(
        svc(None, clusterIP="10.96.0.11"),
        ["web", "ClusterIP", "10.96.0.11", "<none>", "80/TCP", "5m", "<none>"],
        id="defaults-type-and-cluster-ips",
    ),
    pytest.param(
        svc("ClusterIP", clusterIP="None", clusterIPs=["None"], ports=[]),
        ["web", "ClusterIP", "None", "<none>", "<none>", "5m", "<none>"],
        id="headless-without-ports",
    ),
    pytest.param(
        svc("ClusterIP", clusterIPs=["10.96.0.12"], externalIPs=["192.0.2.1", "192.0.2.2"]),
        ["web", "ClusterIP", "10.96.0.12", "192.0.2.1,192.0.2.2", "80/TCP", "5m", "<none>"],
        id="external-ips",
    ),
    pytest.param(
        svc(
            "NodePort",
            clusterIPs=["10.96.0.13"],
            ports=[
                {"port": 80, "nodePort": 30080, "protocol": "TCP"},
                {"port": 53, "nodePort": 30053, "protocol": "UDP"},
            ],
        ),
        ["web", "NodePort", "10.96.0.13", "<none>", "80:30080/TCP,53:30053/UDP", "5m", "<none>"],
        id="node-port",
    ),
    pytest.param(
        svc("LoadBalancer", clusterIPs=["10.96.0.14"], ports=[{"port": 443, "nodePort": 31443}]),
        ["web", "LoadBalancer", "10.96.0.14", "<pending>", "443:31443/TCP", "5m", "<none>"],
        id="load-balancer-pending",
    ),
    pytest.param(
        svc(
            "LoadBalancer",
            clusterIPs=["10.96.0.15"],
            status={
                "loadBalancer": {
                    "ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}, {"ip": "203.0.113.10"}]
                }
            },
        ),
        [
            "web",
            "LoadBalancer",
            "10.96.0.15",
            "203.0.113.10,203.0.113.9,lb.example.com",
            "80/TCP",
            "5m",
            "<none>",
        ],
        id="load-balancer-ingress-sorted-unclipped",
    ),
    pytest.param(
        svc(
            "LoadBalancer",
            clusterIPs=["10.96.0.16"],
            externalIPs=["192.0.2.5"],
            status={"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}},
        ),
        ["web", "LoadBalancer", "10.96.0.16", "203.0.113.9,192.0.2.5", "80/TCP", "5m", "<none>"],
        id="load-balancer-plus-external-ips",
    ),
    pytest.param(
        svc("ExternalName", externalName="db.example.com", ports=[]),
        ["web", "ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"],
        id="external-name",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), SERVICE_CASES)
def test_service_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    assert cells("Service", obj) == expected


def test_service_columns() -> None:
    assert by_name(printer_for("", "Service").columns) == [
        ("Name", "string", 0),
        ("Type", "string", 0),
        ("Cluster-IP", "string", 0),
        ("External-IP", "string", 0),
        ("Port(s)", "string", 0),
        ("Age", "string", 0),
        ("Selector", "string", 1),
    ]


def node(
    conditions: list[dict[str, str]], labels: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "metadata": meta("node-1", age={"days": 10}, labels=labels or {}),
        "spec": spec,
        "status": {
            "conditions": conditions,
            "addresses": [
                {"type": "Hostname", "address": "node-1"},
                {"type": "InternalIP", "address": "192.168.49.2"},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.32.0",
                "osImage": "Ubuntu 22.04.4 LTS",
                "kernelVersion": "6.8.0",
                "containerRuntimeVersion": "containerd://1.7.22",
            },
        },
    }


READY = {"type": "Ready", "status": "True"}
NODE_CASES = [
    pytest.param(node([READY]), ["node-1", "Ready", "<none>", "10d", "v1.32.0"], id="ready"),
    pytest.param(
        node([{"type": "Ready", "status": "False"}]),
        ["node-1", "NotReady", "<none>", "10d", "v1.32.0"],
        id="not-ready",
    ),
    pytest.param(
        node([{"type": "Ready", "status": "Unknown"}]),
        ["node-1", "NotReady", "<none>", "10d", "v1.32.0"],
        id="unknown-is-not-ready",
    ),
    pytest.param(
        node([{"type": "MemoryPressure", "status": "False"}]),
        ["node-1", "Unknown", "<none>", "10d", "v1.32.0"],
        id="no-ready-condition",
    ),
    pytest.param(
        node([READY], unschedulable=True),
        ["node-1", "Ready,SchedulingDisabled", "<none>", "10d", "v1.32.0"],
        id="cordoned",
    ),
    pytest.param(
        node(
            [READY],
            {
                "node-role.kubernetes.io/control-plane": "",
                "node-role.kubernetes.io/etcd": "true",
                "node-role.kubernetes.io/": "",
            },
        ),
        ["node-1", "Ready", "control-plane,etcd", "10d", "v1.32.0"],
        id="roles-from-labels-sorted",
    ),
    pytest.param(
        node([READY], {"kubernetes.io/role": "worker", "node-role.kubernetes.io/worker": ""}),
        ["node-1", "Ready", "worker", "10d", "v1.32.0"],
        id="legacy-role-label-deduplicated",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), NODE_CASES)
def test_node_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    assert cells("Node", obj)[:5] == expected


def test_node_wide_cells() -> None:
    obj = node([READY])
    assert cells("Node", obj)[5:] == [
        "192.168.49.2",
        "<none>",
        "Ubuntu 22.04.4 LTS",
        "6.8.0",
        "containerd://1.7.22",
    ]
    obj["status"]["nodeInfo"] = {}
    assert cells("Node", obj)[7:] == ["<unknown>"] * 3


def test_node_columns() -> None:
    assert [c["name"] for c in printer_for("", "Node").columns] == [
        "Name",
        "Status",
        "Roles",
        "Age",
        "Version",
        "Internal-IP",
        "External-IP",
        "OS-Image",
        "Kernel-Version",
        "Container-Runtime",
    ]


def pv(**spec: Any) -> dict[str, Any]:
    m = meta("pv-1", age={"hours": 4})
    m.update(spec.pop("metadata", {}))
    return {"metadata": m, "spec": spec, "status": spec.pop("status", {"phase": "Available"})}


PV_CASES = [
    pytest.param(
        pv(
            capacity={"storage": "1024Mi"},
            accessModes=["ReadWriteMany", "ReadWriteOnce"],
            persistentVolumeReclaimPolicy="Delete",
            storageClassName="standard",
            claimRef={"namespace": "default", "name": "data"},
            volumeMode="Filesystem",
            status={"phase": "Bound"},
        ),
        [
            "pv-1",
            "1Gi",
            "RWO,RWX",
            "Delete",
            "Bound",
            "default/data",
            "standard",
            "<unset>",
            "",
            "4h",
            "Filesystem",
        ],
        id="bound",
    ),
    pytest.param(
        pv(
            capacity={"storage": "5Gi"},
            accessModes=["ReadWriteOncePod"],
            persistentVolumeReclaimPolicy="Retain",
        ),
        ["pv-1", "5Gi", "RWOP", "Retain", "Available", "", "", "<unset>", "", "4h", "<unset>"],
        id="available",
    ),
    pytest.param(
        pv(
            capacity={"storage": "1Gi"},
            storageClassName="fast",
            metadata={
                "annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"},
                "deletionTimestamp": "2025-03-01T11:59:00Z",
            },
            status={"phase": "Released", "reason": "Reclaiming"},
        ),
        ["pv-1", "1Gi", "", "", "Terminating", "", "legacy", "<unset>", "Reclaiming", "4h", "<unset>"],
        id="terminating-with-beta-class",
    ),
]


@pytest.mark.parametrize(("obj", "expected"), PV_CASES)
def test_persistent_volume_cells(obj: dict[str, Any], expected: list[Any]) -> None:
    assert cells("PersistentVolume", obj) == expected


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        pytest.param(
            {
                "volumeName": "pv-1",
                "storageClassName": "standard",
                "resources": {"requests": {"storage": "1Gi"}},
            },
            {"phase": "Bound", "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteOnce"]},
            ["data", "Bound", "pv-1", "2Gi", "RWO", "standard", "<unset>", "5m", "<unset>"],
            id="bound-shows-actual-capacity",
        ),
        pytest.param(
            {
                "storageClassName": "standard",
                "resources": {"requests": {"storage": "1Gi"}},
                "volumeMode": "Block",
            },
            {"phase": "Pending"},
            ["data", "Pending", "", "", "", "standard", "<unset>", "5m", "Block"],
            id="pending-hides-capacity",
        ),
    ],
)
def test_persistent_volume_claim_cells(
    spec: dict[str, Any], status: dict[str, Any], expected: list[Any]
) -> None:
    assert (
        cells("PersistentVolumeClaim", {"metadata": meta("data"), "spec": spec, "status": status}) == expected
    )


@pytest.mark.parametrize(
    ("subsets", "expected"),
    [
        pytest.param(None, "<none>", id="no-subsets"),
        pytest.param([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}], "10.0.0.1:80", id="one"),
        pytest.param(
            [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 5)], "ports": [{"port": 80}]}],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...",
            id="more-than-three",
        ),
        pytest.param(
            [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}],
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
            id="each-port-times-each-address",
        ),
        pytest.param([{"addresses": [{"ip": "10.0.0.1"}]}], "10.0.0.1", id="headless-no-ports"),
        pytest.param(
            [{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}], "[fd00::1]:80", id="ipv6"
        ),
        pytest.param(
            [{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}], "", id="only-not-ready"
        ),
    ],
)
def test_endpoints_cells(subsets: list[Any] | None, expected: str) -> None:
    obj = {"metadata": meta("web"), **({"subsets": subsets} if subsets is not None else {})}
    assert cells("Endpoints", obj) == ["web", expected, "5m"]


def test_resource_quota_splits_requests_and_limits() -> None:
    obj = {
        "metadata": meta("quota"),
        "status": {
            "hard": {
                "pods": "10",
                "requests.cpu": "1",
                "limits.cpu": "2",
                "requests.memory": "1Gi",
                "limits.memory": "2Gi",
            },
            "used": {
                "pods": "3",
                "requests.cpu": "500m",
                "requests.memory": "512Mi",
                "limits.memory": "1024Mi",
            },
        },
    }
    assert cells("ResourceQuota", obj) == [
        "quota",
        "pods: 3/10, requests.cpu: 500m/1, requests.memory: 512Mi/1Gi",
        "limits.cpu: 0/2, limits.memory: 1Gi/2Gi",
        "5m",
    ]


@pytest.mark.parametrize(
    ("kind", "obj", "expected"),
    [
        pytest.param(
            "Namespace",
            {"metadata": meta("dev"), "status": {"phase": "Active"}},
            ["dev", "Active", "5m"],
            id="namespace",
        ),
        pytest.param(
            "ConfigMap",
            {"metadata": meta("cfg"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}},
            ["cfg", 3, "5m"],
            id="configmap",
        ),
        pytest.param(
            "Secret",
            {"metadata": meta("tls"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}},
            ["tls", "kubernetes.io/tls", 2, "5m"],
            id="secret",
        ),
        pytest.param("Secret", {"metadata": meta("s")}, ["s", "Opaque", 0, "5m"], id="secret-default-type"),
        pytest.param(
            "ServiceAccount", {"metadata": meta("default")}, ["default", 0, "5m"], id="serviceaccount"
        ),
        pytest.param(
            "ReplicationController",
            {
                "metadata": meta("rc"),
                "spec": {
                    "replicas": 3,
                    "selector": {"app": "rc"},
                    "template": {"spec": {"containers": [{"name": "a", "image": "img:1"}]}},
                },
                "status": {"replicas": 3, "readyReplicas": 2},
            },
            ["rc", 3, 3, 2, "5m", "a", "img:1", "app=rc"],
            id="replicationcontroller",
        ),
        pytest.param(
            "PodTemplate",
            {
                "metadata": meta("tpl"),
                "template": {
                    "metadata": {"labels": {"b": "2", "a": "1"}},
                    "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
                },
            },
            ["tpl", "a,b", "x,y", "a=1,b=2"],
            id="podtemplate",
        ),
        pytest.param(
            "ComponentStatus",
            {
                "metadata": {"name": "etcd-0"},
                "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}],
            },
            ["etcd-0", "Healthy", "ok", ""],
            id="componentstatus",
        ),
    ],
)
def test_simple_core_kinds(kind: str, obj: dict[str, Any], expected: list[Any]) -> None:
    assert cells(kind, obj) == expected


@pytest.mark.parametrize("kind", ["LimitRange", "Binding"])
def test_core_kinds_without_printer_use_name_and_created_at(kind: str) -> None:
    printer = printer_for("", kind)
    assert by_name(printer.columns) == [("Name", "string", 0), ("Created At", "date", 0)]
    assert printer.cells({"metadata": meta("limits")}, NOW) == ["limits", "2025-03-01T11:55:00Z"]
