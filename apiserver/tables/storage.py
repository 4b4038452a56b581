"""Printers for storage.k8s.io: StorageClass, VolumeAttachment, CSIDriver, CSINode,
CSIStorageCapacity, VolumeAttributesClass.

A StorageClass marked default by the `storageclass.kubernetes.io/is-default-class`
annotation (or its beta form) prints as "standard (default)" in the NAME cell, which
is why that cell is not simply metadata.name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiserver.tables.cells import get, items, meta
from apiserver.tables.duration import since
from apiserver.tables.printer import Printer, age_column, column, doc, name_column
from apiserver.tables.quantity import canonical

DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
DEFAULT_VAC = "volumeattributesclass.alpha.kubernetes.io/is-default-class"


def _name_age(obj: dict[str, Any], now: datetime, *middle: Any) -> list[Any]:
    m = meta(obj)
    return [m.get("name", ""), *middle, since(m.get("creationTimestamp"), now)]


def is_default_class(obj: dict[str, Any]) -> bool:
    annotations = meta(obj).get("annotations") or {}
    return annotations.get(DEFAULT_CLASS) == "true" or annotations.get(BETA_DEFAULT_CLASS) == "true"


def _storageclass_cells(sc: dict[str, Any], now: datetime) -> list[Any]:
    m = meta(sc)
    name = m.get("name", "") + (" (default)" if is_default_class(sc) else "")
    return [
        name,
        sc.get("provisioner", ""),
        sc.get("reclaimPolicy") or "Delete",
        sc.get("volumeBindingMode") or "Immediate",
        bool(sc.get("allowVolumeExpansion")),
        since(m.get("creationTimestamp"), now),
    ]


def storageclass_printer() -> Printer:
    sc = "storage.v1.StorageClass"
    columns = [
        name_column(),
        column("Provisioner", "string", doc(sc, "provisioner")),
        column("ReclaimPolicy", "string", doc(sc, "reclaimPolicy")),
        column("VolumeBindingMode", "string", doc(sc, "volumeBindingMode")),
        column("AllowVolumeExpansion", "string", doc(sc, "allowVolumeExpansion")),
        age_column(),
    ]
    return Printer(columns, _storageclass_cells)


def volumeattributesclass_printer() -> Printer:
    columns = [
        name_column(),
        column("DriverName", "string", doc("storage.v1beta1.VolumeAttributesClass", "driverName")),
        age_column(),
    ]

    def cells(o: dict[str, Any], now: datetime) -> list[Any]:
        annotations = meta(o).get("annotations") or {}
        suffix = " (default)" if annotations.get(DEFAULT_VAC) == "true" else ""
        row = _name_age(o, now, o.get("driverName", ""))
        return [row[0] + suffix, *row[1:]]

    return Printer(columns, cells)


def _volumeattachment_cells(va: dict[str, Any], now: datetime) -> list[Any]:
    return _name_age(
        va,
        now,
        get(va, "spec", "attacher", default=""),
        get(va, "spec", "source", "persistentVolumeName", default=""),
        get(va, "spec", "nodeName", default=""),
        bool(get(va, "status", "attached")),
    )


def volumeattachment_printer() -> Printer:
    spec = "storage.v1.VolumeAttachmentSpec"
    columns = [
        name_column(),
        column("Attacher", "string", doc(spec, "attacher"), fmt="name"),
        column("PV", "string", doc("storage.v1.VolumeAttachmentSource", "persistentVolumeName")),
        column("Node", "string", doc(spec, "nodeName")),
        column("Attached", "boolean", doc("storage.v1.VolumeAttachmentStatus", "attached")),
        age_column(),
    ]
    return Printer(columns, _volumeattachment_cells)


def _csidriver_cells(d: dict[str, Any], now: datetime) -> list[Any]:
    spec = d.get("spec") or {}
    tokens = spec.get("tokenRequests")
    token_requests = "<unset>" if tokens is None else ",".join(t.get("audience", "") for t in tokens)
    attach = spec.get("attachRequired")
    return _name_age(
        d,
        now,
        True if attach is None else bool(attach),
        bool(spec.get("podInfoOnMount")),
        bool(spec.get("storageCapacity")),
        token_requests,
        bool(spec.get("requiresRepublish")),
        ",".join(spec.get("volumeLifecycleModes") or []) or "<none>",
    )


def csidriver_printer() -> Printer:
    spec = "storage.v1.CSIDriverSpec"
    columns = [
        name_column(),
        column("AttachRequired", "boolean", doc(spec, "attachRequired")),
        column("PodInfoOnMount", "boolean", doc(spec, "podInfoOnMount")),
        column("StorageCapacity", "boolean", doc(spec, "storageCapacity")),
        column("TokenRequests", "string", doc(spec, "tokenRequests")),
        column("RequiresRepublish", "boolean", doc(spec, "requiresRepublish")),
        column("Modes", "string", doc(spec, "volumeLifecycleModes")),
        age_column(),
    ]
    return Printer(columns, _csidriver_cells)


def csinode_printer() -> Printer:
    columns = [
        name_column(),
        column("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"),
        age_column(),
    ]
    return Printer(columns, lambda o, now: _name_age(o, now, len(items(o, "spec", "drivers"))))


def csistoragecapacity_printer() -> Printer:
    cap = "storage.v1.CSIStorageCapacity"
    columns = [
        name_column(),
        column("StorageClassName", "string", doc(cap, "storageClassName")),
        column("Capacity", "string", doc(cap, "capacity")),
    ]

    def cells(o: dict[str, Any], now: datetime) -> list[Any]:
        capacity = "<unset>" if o.get("capacity") is None else canonical(o["capacity"])
        return [meta(o).get("name", ""), o.get("storageClassName", ""), capacity]

    return Printer(columns, cells)
