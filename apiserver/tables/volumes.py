"""Printers for PersistentVolume and PersistentVolumeClaim (core/v1).

ACCESS MODES abbreviates in a fixed order (RWO, ROX, RWX, RWOP); STORAGECLASS prefers
the legacy `volume.beta.kubernetes.io/storage-class` annotation over the field, as
Kubernetes does; a claim shows VOLUME, CAPACITY and ACCESS MODES only once bound, and
either object reads "Terminating" while it is being deleted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiserver.tables.cells import get, items, mapping, meta
from apiserver.tables.duration import since
from apiserver.tables.printer import Printer, age_column, column, doc, name_column
from apiserver.tables.quantity import zero_or

BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"


def access_modes(modes: list[Any]) -> str:
    """helper.GetAccessModesAsString: RWO, ROX, RWX, RWOP in that order."""
    abbrev = [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    return ",".join(short for mode, short in abbrev if mode in modes)


def _pv_cells(pv: dict[str, Any], now: datetime) -> list[Any]:
    m, spec = meta(pv), mapping(pv, "spec")
    claim = f"{get(spec, 'claimRef', 'namespace', default='')}/{get(spec, 'claimRef', 'name', default='')}"
    phase = "Terminating" if m.get("deletionTimestamp") else get(pv, "status", "phase", default="")
    annotations = m.get("annotations") or {}
    storage_class = annotations.get(BETA_STORAGE_CLASS, spec.get("storageClassName") or "")
    return [
        m.get("name", ""),
        zero_or(get(spec, "capacity", "storage")),
        access_modes(items(spec, "accessModes")),
        spec.get("persistentVolumeReclaimPolicy") or "",
        phase,
        claim if spec.get("claimRef") else "",
        storage_class,
        spec.get("volumeAttributesClassName") or "<unset>",
        get(pv, "status", "reason", default=""),
        since(m.get("creationTimestamp"), now),
        spec.get("volumeMode") or "<unset>",
    ]


def pv_printer() -> Printer:
    spec, status = "core.v1.PersistentVolumeSpec", "core.v1.PersistentVolumeStatus"
    columns = [
        name_column(),
        column("Capacity", "string", doc(spec, "capacity")),
        column("Access Modes", "string", doc(spec, "accessModes")),
        column("Reclaim Policy", "string", doc(spec, "persistentVolumeReclaimPolicy")),
        column("Status", "string", doc(status, "phase")),
        column("Claim", "string", doc(spec, "claimRef")),
        column("StorageClass", "string", "StorageClass of the pv"),
        column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
        column("Reason", "string", doc(status, "reason")),
        age_column(),
        column("VolumeMode", "string", doc(spec, "volumeMode"), priority=1),
    ]
    return Printer(columns, _pv_cells)


def _pvc_cells(pvc: dict[str, Any], now: datetime) -> list[Any]:
    m, spec = meta(pvc), mapping(pvc, "spec")
    phase = "Terminating" if m.get("deletionTimestamp") else get(pvc, "status", "phase", default="")
    capacity = modes = ""
    if spec.get("volumeName"):
        modes = access_modes(items(pvc, "status", "accessModes"))
        capacity = zero_or(get(pvc, "status", "capacity", "storage"))
    annotations = m.get("annotations") or {}
    storage_class = annotations.get(BETA_STORAGE_CLASS, spec.get("storageClassName") or "")
    return [
        m.get("name", ""),
        phase,
        spec.get("volumeName") or "",
        capacity,
        modes,
        storage_class,
        spec.get("volumeAttributesClassName") or "<unset>",
        since(m.get("creationTimestamp"), now),
        spec.get("volumeMode") or "<unset>",
    ]


def pvc_printer() -> Printer:
    spec, status = "core.v1.PersistentVolumeClaimSpec", "core.v1.PersistentVolumeClaimStatus"
    columns = [
        name_column(),
        column("Status", "string", doc(status, "phase")),
        column("Volume", "string", doc(spec, "volumeName")),
        column("Capacity", "string", doc(status, "capacity")),
        column("Access Modes", "string", doc(status, "accessModes")),
        column("StorageClass", "string", "StorageClass of the pvc"),
        column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
        age_column(),
        column("VolumeMode", "string", doc(spec, "volumeMode"), priority=1),
    ]
    return Printer(columns, _pvc_cells)
