"""networking, discovery, rbac, policy, coordination, storage, certificates, scheduling,
admission printers, and the kinds Kubernetes prints with the default NAME / CREATED AT."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.tables import has_printer, printer_for
from tests.apiserver.tables.helpers import NOW, by_name, meta


def rules(*hosts: str) -> list[dict[str, Any]]:
    return [{"host": h} if h else {} for h in hosts]


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        pytest.param(
            {"ingressClassName": "nginx", "rules": rules("a.example.com")},
            {"loadBalancer": {"ingress": [{"ip": "192.168.49.2"}]}},
            ["web", "nginx", "a.example.com", "192.168.49.2", "80", "5m"],
            id="one-host",
        ),
        pytest.param(
            {"rules": rules("")}, {}, ["web", "<none>", "*", "", "80", "5m"], id="no-class-no-host-no-address"
        ),
        pytest.param(
            {"rules": rules("a", "b", "c", "d", "e"), "tls": [{"hosts": ["a"]}]},
            {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}, {"ip": "10.0.0.9"}]}},
            ["web", "<none>", "a,b,c + 2 more...", "10.0.0.9,lb.example.com", "80, 443", "5m"],
            id="many-hosts-and-tls",
        ),
    ],
)
def test_ingress_cells(spec: dict[str, Any], status: dict[str, Any], expected: list[Any]) -> None:
    obj = {"metadata": meta("web"), "spec": spec, "status": status}
    assert printer_for("networking.k8s.io", "Ingress").cells(obj, NOW) == expected


@pytest.mark.parametrize(
    ("group", "kind", "obj", "expected"),
    [
        pytest.param(
            "networking.k8s.io",
            "IngressClass",
            {
                "metadata": meta("nginx"),
                "spec": {
                    "controller": "k8s.io/ingress-nginx",
                    "parameters": {
                        "apiGroup": "k8s.example.com",
                        "kind": "IngressParameters",
                        "name": "external-lb",
                    },
                },
            },
            ["nginx", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/external-lb", "5m"],
            id="ingressclass",
        ),
        pytest.param(
            "networking.k8s.io",
            "NetworkPolicy",
            {"metadata": meta("deny"), "spec": {"podSelector": {}}},
            ["deny", "<none>", "5m"],
            id="networkpolicy-all-pods",
        ),
        pytest.param(
            "networking.k8s.io",
            "NetworkPolicy",
            {"metadata": meta("db"), "spec": {"podSelector": {"matchLabels": {"role": "db"}}}},
            ["db", "role=db", "5m"],
            id="networkpolicy-selector",
        ),
        pytest.param(
            "discovery.k8s.io",
            "EndpointSlice",
            {
                "metadata": meta("web-abc"),
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 80}, {"name": "metrics"}],
                "endpoints": [{"addresses": [f"10.0.0.{i}"]} for i in range(1, 6)],
            },
            ["web-abc", "IPv4", "80,metrics", "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...", "5m"],
            id="endpointslice",
        ),
        pytest.param(
            "discovery.k8s.io",
            "EndpointSlice",
            {"metadata": meta("empty"), "addressType": "IPv6", "ports": None, "endpoints": []},
            ["empty", "IPv6", "<unset>", "<unset>", "5m"],
            id="endpointslice-empty",
        ),
        pytest.param(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            {
                "metadata": meta("read"),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
                "subjects": [
                    {"kind": "User", "name": "jane"},
                    {"kind": "Group", "name": "devs"},
                    {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
                    {"kind": "User", "name": "joe"},
                ],
            },
            ["read", "Role/reader", "5m", "jane, joe", "devs", "tools/ci"],
            id="rolebinding",
        ),
        pytest.param(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            {"metadata": meta("admin"), "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}},
            ["admin", "ClusterRole/cluster-admin", "5m", "", "", ""],
            id="clusterrolebinding",
        ),
        pytest.param(
            "policy",
            "PodDisruptionBudget",
            {"metadata": meta("pdb"), "spec": {"minAvailable": 2}, "status": {"disruptionsAllowed": 1}},
            ["pdb", "2", "N/A", 1, "5m"],
            id="pdb-min-available",
        ),
        pytest.param(
            "policy",
            "PodDisruptionBudget",
            {"metadata": meta("pdb"), "spec": {"maxUnavailable": "25%"}, "status": {}},
            ["pdb", "N/A", "25%", 0, "5m"],
            id="pdb-max-unavailable-percent",
        ),
        pytest.param(
            "coordination.k8s.io",
            "Lease",
            {"metadata": meta("node-1"), "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}},
            ["node-1", "node-1", "5m"],
            id="lease",
        ),
        pytest.param(
            "storage.k8s.io",
            "StorageClass",
            {
                "metadata": meta(
                    "standard", annotations={"storageclass.kubernetes.io/is-default-class": "true"}
                ),
                "provisioner": "k8s.io/minikube-hostpath",
            },
            ["standard (default)", "k8s.io/minikube-hostpath", "Delete", "Immediate", False, "5m"],
            id="storageclass-default",
        ),
        pytest.param(
            "storage.k8s.io",
            "StorageClass",
            {
                "metadata": meta("fast"),
                "provisioner": "csi.example.com",
                "reclaimPolicy": "Retain",
                "volumeBindingMode": "WaitForFirstConsumer",
                "allowVolumeExpansion": True,
            },
            ["fast", "csi.example.com", "Retain", "WaitForFirstConsumer", True, "5m"],
            id="storageclass",
        ),
        pytest.param(
            "certificates.k8s.io",
            "CertificateSigningRequest",
            {
                "metadata": meta("csr-1"),
                "spec": {
                    "signerName": "kubernetes.io/kube-apiserver-client",
                    "username": "jane",
                    "expirationSeconds": 86400,
                },
                "status": {"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"},
            },
            ["csr-1", "5m", "kubernetes.io/kube-apiserver-client", "jane", "24h", "Approved,Issued"],
            id="csr-approved-issued",
        ),
        pytest.param(
            "certificates.k8s.io",
            "CertificateSigningRequest",
            {"metadata": meta("csr-2"), "spec": {"username": "bob"}},
            ["csr-2", "5m", "<none>", "bob", "<none>", "Pending"],
            id="csr-pending",
        ),
        pytest.param(
            "scheduling.k8s.io",
            "PriorityClass",
            {
                "metadata": meta("high"),
                "value": 1000000,
                "globalDefault": False,
                "preemptionPolicy": "PreemptLowerPriority",
            },
            ["high", 1000000, False, "5m", "PreemptLowerPriority"],
            id="priorityclass",
        ),
        pytest.param(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            {"metadata": meta("hooks"), "webhooks": [{"name": "a"}, {"name": "b"}]},
            ["hooks", 2, "5m"],
            id="webhooks",
        ),
        pytest.param(
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicyBinding",
            {"metadata": meta("b"), "spec": {"policyName": "p", "paramRef": {"name": "cfg"}}},
            ["b", "p", "*/cfg", "5m"],
            id="policy-binding",
        ),
    ],
)
def test_cluster_kind_cells(group: str, kind: str, obj: dict[str, Any], expected: list[Any]) -> None:
    assert printer_for(group, kind).cells(obj, NOW) == expected


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        pytest.param("rbac.authorization.k8s.io", "Role", id="role"),
        pytest.param("rbac.authorization.k8s.io", "ClusterRole", id="clusterrole"),
        pytest.param("", "LimitRange", id="limitrange"),
        pytest.param("apiextensions.k8s.io", "CustomResourceDefinition", id="crd"),
        pytest.param("apiregistration.k8s.io", "APIService", id="apiservice"),
    ],
)
def test_kinds_without_printer_get_default_table(group: str, kind: str) -> None:
    assert not has_printer(group, kind)
    printer = printer_for(group, kind)
    assert by_name(printer.columns) == [("Name", "string", 0), ("Created At", "date", 0)]
    assert printer.columns[0]["format"] == "name"
    assert printer.cells({"metadata": meta("edit")}, NOW) == ["edit", "2025-03-01T11:55:00Z"]
    assert printer.cells({"metadata": {"name": "new"}}, NOW) == ["new", "0001-01-01T00:00:00Z"]


@pytest.mark.parametrize(
    ("group", "kind", "columns"),
    [
        pytest.param(
            "networking.k8s.io",
            "Ingress",
            ["Name", "Class", "Hosts", "Address", "Ports", "Age"],
            id="ingress",
        ),
        pytest.param(
            "policy",
            "PodDisruptionBudget",
            ["Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"],
            id="pdb",
        ),
        pytest.param(
            "storage.k8s.io",
            "StorageClass",
            ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"],
            id="storageclass",
        ),
        pytest.param("coordination.k8s.io", "Lease", ["Name", "Holder", "Age"], id="lease"),
        pytest.param(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"],
            id="rolebinding",
        ),
        pytest.param(
            "discovery.k8s.io",
            "EndpointSlice",
            ["Name", "AddressType", "Ports", "Endpoints", "Age"],
            id="endpointslice",
        ),
    ],
)
def test_cluster_kind_columns(group: str, kind: str, columns: list[str]) -> None:
    assert [c["name"] for c in printer_for(group, kind).columns] == columns


def test_core_group_alias() -> None:
    assert printer_for("core", "Pod") is printer_for("", "Pod")
