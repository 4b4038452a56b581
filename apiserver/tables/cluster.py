"""Printers for the cluster-policy groups: rbac (RoleBinding, ClusterRoleBinding),
policy (PodDisruptionBudget), coordination (Lease, LeaseCandidate), scheduling
(PriorityClass), node (RuntimeClass), certificates (CertificateSigningRequest,
ClusterTrustBundle) and flowcontrol (FlowSchema, PriorityLevelConfiguration).

Role and ClusterRole have no printer in Kubernetes: they get the default NAME / CREATED
AT table, as do LimitRange and CustomResourceDefinition (see `printer.default_printer`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from apiserver.tables.cells import NONE, get, int_or_string, items, mapping, meta
from apiserver.tables.duration import human_duration, since
from apiserver.tables.printer import Printer, age_column, column, doc, name_column


def _name_age(obj: dict[str, Any], now: datetime, *middle: Any) -> list[Any]:
    m = meta(obj)
    return [m.get("name", ""), *middle, since(m.get("creationTimestamp"), now)]


def subjects_strings(subjects: list[Any]) -> tuple[list[str], list[str], list[str]]:
    """rbac.SubjectsStrings: users, groups and "namespace/name" service accounts."""
    users, groups, sas = [], [], []
    for s in subjects:
        kind = s.get("kind")
        if kind == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}/{s.get('name', '')}")
        elif kind == "User":
            users.append(s.get("name", ""))
        elif kind == "Group":
            groups.append(s.get("name", ""))
    return users, groups, sas


def _binding_cells(b: dict[str, Any], now: datetime) -> list[Any]:
    role = f"{get(b, 'roleRef', 'kind', default='')}/{get(b, 'roleRef', 'name', default='')}"
    users, groups, sas = subjects_strings([s for s in items(b, "subjects") if isinstance(s, dict)])
    return [*_name_age(b, now, role), ", ".join(users), ", ".join(groups), ", ".join(sas)]


def _binding_printer(kind: str, noun: str) -> Printer:
    columns = [
        name_column(),
        column("Role", "string", doc(f"rbac.v1.{kind}", "roleRef")),
        age_column(),
        column("Users", "string", f"Users in the {noun}", priority=1),
        column("Groups", "string", f"Groups in the {noun}", priority=1),
        column("ServiceAccounts", "string", f"ServiceAccounts in the {noun}", priority=1),
    ]
    return Printer(columns, _binding_cells)


def rolebinding_printer() -> Printer:
    return _binding_printer("RoleBinding", "roleBinding")


def clusterrolebinding_printer() -> Printer:
    return _binding_printer("ClusterRoleBinding", "clusterRoleBinding")


def _pdb_cells(pdb: dict[str, Any], now: datetime) -> list[Any]:
    spec = mapping(pdb, "spec")
    min_available = "N/A" if spec.get("minAvailable") is None else int_or_string(spec["minAvailable"])
    max_unavailable = "N/A" if spec.get("maxUnavailable") is None else int_or_string(spec["maxUnavailable"])
    allowed = get(pdb, "status", "disruptionsAllowed", default=0)
    return _name_age(pdb, now, min_available, max_unavailable, allowed)


def pdb_printer() -> Printer:
    columns = [
        name_column(),
        column("Min Available", "string", "The minimum number of pods that must be available."),
        column("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
        column(
            "Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."
        ),
        age_column(),
    ]
    return Printer(columns, _pdb_cells)


def lease_printer() -> Printer:
    columns = [
        name_column(),
        column("Holder", "string", doc("coordination.v1.LeaseSpec", "holderIdentity")),
        age_column(),
    ]
    return Printer(columns, lambda o, now: _name_age(o, now, get(o, "spec", "holderIdentity", default="")))


def leasecandidate_printer() -> Printer:
    columns = [
        name_column(),
        column("LeaseName", "string", doc("coordination.v1alpha2.LeaseCandidateSpec", "leaseName")),
        # Kubernetes looks these two descriptions up on ObjectMeta, where they do not exist
        column("BinaryVersion", "string", ""),
        column("EmulationVersion", "string", ""),
        age_column(),
    ]
    spec = ("leaseName", "binaryVersion", "emulationVersion")
    return Printer(columns, lambda o, now: _name_age(o, now, *(get(o, "spec", f, default="") for f in spec)))


def priorityclass_printer() -> Printer:
    pc = "scheduling.v1.PriorityClass"
    columns = [
        name_column(),
        column("Value", "integer", doc(pc, "value")),
        column("Global-Default", "boolean", doc(pc, "globalDefault")),
        age_column(),
        column("PreemptionPolicy", "string", doc(pc, "preemptionPolicy")),
    ]

    def cells(o: dict[str, Any], now: datetime) -> list[Any]:
        row = _name_age(o, now, o.get("value", 0), bool(o.get("globalDefault")))
        return [*row, o.get("preemptionPolicy") or ""]

    return Printer(columns, cells)


def runtimeclass_printer() -> Printer:
    # Kubernetes looks the Handler description up on ObjectMeta, where it does not exist
    columns = [name_column(), column("Handler", "string", ""), age_column()]
    return Printer(columns, lambda o, now: _name_age(o, now, o.get("handler", "")))


def csr_status(csr: dict[str, Any]) -> str:
    """extractCSRStatus: Denied/Approved/Pending, then ",Failed" and ",Issued"."""
    types = {c.get("type") for c in items(csr, "status", "conditions") if isinstance(c, dict)}
    status = "Denied" if "Denied" in types else "Approved" if "Approved" in types else "Pending"
    if "Failed" in types:
        status += ",Failed"
    if get(csr, "status", "certificate"):
        status += ",Issued"
    return status


def _csr_cells(csr: dict[str, Any], now: datetime) -> list[Any]:
    m, spec = meta(csr), mapping(csr, "spec")
    seconds = spec.get("expirationSeconds")
    duration = NONE if seconds is None else human_duration(timedelta(seconds=seconds))
    return [
        m.get("name", ""),
        since(m.get("creationTimestamp"), now),
        spec.get("signerName") or NONE,
        spec.get("username", ""),
        duration,
        csr_status(csr),
    ]


def csr_printer() -> Printer:
    spec = "certificates.v1.CertificateSigningRequestSpec"
    columns = [
        name_column(),
        age_column(),
        column("SignerName", "string", doc(spec, "signerName")),
        column("Requestor", "string", doc(spec, "request")),
        column("RequestedDuration", "string", doc(spec, "expirationSeconds")),
        column("Condition", "string", doc("certificates.v1.CertificateSigningRequestStatus", "conditions")),
    ]
    return Printer(columns, _csr_cells)


def clustertrustbundle_printer() -> Printer:
    columns = [
        name_column(),
        column("SignerName", "string", doc("certificates.v1alpha1.ClusterTrustBundleSpec", "signerName")),
    ]
    return Printer(columns, lambda o, now: [meta(o).get("name", ""), get(o, "spec", "signerName") or NONE])


def _flowschema_cells(fs: dict[str, Any], now: datetime) -> list[Any]:
    spec = mapping(fs, "spec")
    method = (
        get(spec, "distinguisherMethod", "type", default=NONE) if spec.get("distinguisherMethod") else NONE
    )
    dangling = "?"
    for c in items(fs, "status", "conditions"):
        if isinstance(c, dict) and c.get("type") == "Dangling":
            dangling = c.get("status", "")
            break
    row = _name_age(
        fs,
        now,
        get(spec, "priorityLevelConfiguration", "name", default=""),
        spec.get("matchingPrecedence", 0),
        method,
    )
    return [*row, dangling]


def flowschema_printer() -> Printer:
    spec = "flowcontrol.v1.FlowSchemaSpec"
    columns = [
        name_column(),
        column("PriorityLevel", "string", doc("flowcontrol.v1.PriorityLevelConfigurationReference", "name")),
        column("MatchingPrecedence", "string", doc(spec, "matchingPrecedence")),
        column("DistinguisherMethod", "string", doc(spec, "distinguisherMethod")),
        age_column(),
        column("MissingPL", "string", "references a broken or non-existent PriorityLevelConfiguration"),
    ]

    def order(fs: dict[str, Any]) -> tuple[int, str]:  # FlowSchemaSequence
        return get(fs, "spec", "matchingPrecedence", default=0), meta(fs).get("name", "")

    return Printer(columns, _flowschema_cells, sort_key=order)


def _plc_cells(plc: dict[str, Any], now: datetime) -> list[Any]:
    limited = get(plc, "spec", "limited")
    ncs: Any = NONE
    queues: Any = NONE
    hand: Any = NONE
    limit: Any = NONE
    if isinstance(limited, dict):
        ncs = limited.get("nominalConcurrencyShares", 0)
        queuing = get(limited, "limitResponse", "queuing")
        if isinstance(queuing, dict):
            queues, hand = queuing.get("queues", 0), queuing.get("handSize", 0)
            limit = queuing.get("queueLengthLimit", 0)
    return _name_age(plc, now, get(plc, "spec", "type", default=""), ncs, queues, hand, limit)


def prioritylevel_printer() -> Printer:
    queuing = "flowcontrol.v1.QueuingConfiguration"
    columns = [
        name_column(),
        column("Type", "string", doc("flowcontrol.v1.PriorityLevelConfigurationSpec", "type")),
        column(
            "NominalConcurrencyShares",
            "string",
            doc("flowcontrol.v1.LimitedPriorityLevelConfiguration", "nominalConcurrencyShares"),
        ),
        column("Queues", "string", doc(queuing, "queues")),
        column("HandSize", "string", doc(queuing, "handSize")),
        column("QueueLengthLimit", "string", doc(queuing, "queueLengthLimit")),
        age_column(),
    ]
    return Printer(columns, _plc_cells)
