"""PersistentVolumeClaims, PersistentVolumes and StorageClasses.

Mirrors the core group's PV/PVC validation and storage/v1's StorageClass validation:
a claim needs access modes and a storage request; after creation its spec is frozen
except that a bound claim may grow `resources.requests.storage` and `volumeName` may be
set once (by the binder). A volume needs access modes, a storage capacity and exactly
one source; its source is frozen after creation.
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.validation_meta import (
    validate_label_selector,
    validate_object_meta,
    validate_object_meta_update,
)
from apiserver.admission.validation_names import is_qualified_name, name_is_dns_subdomain
from apiserver.admission.validation_resources import (
    quantity_or_error,
    validate_positive_quantity,
    validate_quantity_value,
)
from apiserver.admission.validation_util import (
    as_dict,
    as_list,
    as_str,
    child,
    go_string_map,
    immutable,
    invalid_go,
    key,
    not_supported_go,
    spec_diff,
    validate_path_no_backsteps,
)
from apiserver.errors import FieldError, forbidden, invalid, not_supported, required, too_long

ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
VOLUME_MODES = ["Block", "Filesystem"]
RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]
_PV_SOURCES = ["gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs", "rbd", "iscsi",
               "cinder", "cephfs", "fc", "flocker", "flexVolume", "azureFile", "vsphereVolume", "quobyte",
               "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "local", "storageos", "csi"]


def _access_modes(modes: Any, path: str, detail: str) -> list[FieldError]:
    modes = as_list(modes)
    errs = [] if modes else [required(path, detail)]
    errs += [not_supported(path, mode, ACCESS_MODES) for mode in modes if mode not in ACCESS_MODES]
    if "ReadWriteOncePod" in modes and any(m in ACCESS_MODES and m != "ReadWriteOncePod" for m in modes):
        errs.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return errs


def _class_name(value: Any, path: str) -> list[FieldError]:
    name = as_str(value)
    return [invalid(path, name, msg) for msg in name_is_dns_subdomain(name, False)] if name else []


def validate_pvc_spec(spec: Any, path: str) -> list[FieldError]:
    spec = as_dict(spec)
    errs = _access_modes(spec.get("accessModes"), child(path, "accessModes"), "at least 1 access mode is required")
    if isinstance(spec.get("selector"), dict):
        errs += validate_label_selector(spec["selector"], child(path, "selector"))
    storage_path = key(child(path, "resources"), "storage")
    requests = as_dict(as_dict(spec.get("resources")).get("requests"))
    if "storage" not in requests:
        errs.append(required(storage_path, ""))
    else:
        quantity, q_errs = quantity_or_error(requests["storage"], storage_path)
        errs += q_errs
        if quantity is not None:
            errs += validate_positive_quantity(quantity, storage_path) or validate_quantity_value(
                "storage", quantity, storage_path)
    errs += _class_name(spec.get("storageClassName"), child(path, "storageClassName"))
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errs.append(not_supported(child(path, "volumeMode"), mode, VOLUME_MODES))
    source = spec.get("dataSource")
    if isinstance(source, dict):
        for field in ("name", "kind"):
            if not as_str(source.get(field)):
                errs.append(required(child(path, "dataSource", field), ""))
        if not as_str(source.get("apiGroup")) and source.get("kind") != "PersistentVolumeClaim":
            errs.append(invalid(child(path, "dataSource"), as_str(source.get("kind")),
                                "must be 'PersistentVolumeClaim' when referencing the default apiGroup"))
    return errs


def validate_pvc(pvc: dict[str, Any]) -> list[FieldError]:
    return (validate_object_meta(pvc.get("metadata"), name_is_dns_subdomain)
            + validate_pvc_spec(pvc.get("spec"), "spec"))


def validate_pvc_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata")) + validate_pvc(new)
    new_spec, old_spec = dict(as_dict(new.get("spec"))), dict(as_dict(old.get("spec")))
    if not as_str(old_spec.get("volumeName")):
        old_spec["volumeName"] = new_spec.get("volumeName")
        if old_spec["volumeName"] is None:
            del old_spec["volumeName"]
    bound = as_dict(new.get("status")).get("phase") == "Bound"
    new_req = as_dict(as_dict(new_spec.get("resources")).get("requests"))
    old_req = as_dict(as_dict(old_spec.get("resources")).get("requests"))
    if bound and new_req:
        resources = dict(as_dict(new_spec.get("resources")))
        resources["requests"] = {**new_req, "storage": old_req.get("storage")}
        new_spec["resources"] = resources
    if new_spec != old_spec:
        errs.append(forbidden("spec", "spec is immutable after creation except resources.requests and "
                              "volumeAttributesClassName for bound claims\n"
                              + spec_diff("core.PersistentVolumeClaimSpec", old_spec, new_spec)))
    new_size, _ = quantity_or_error(new_req.get("storage"), "")
    old_size, _ = quantity_or_error(old_req.get("storage"), "")
    status_size, _ = quantity_or_error(as_dict(as_dict(old.get("status")).get("capacity")).get("storage"), "")
    if new_size is not None and old_size is not None and new_size < old_size:
        if status_size is not None and new_size <= status_size:
            errs.append(forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"))
    errs += immutable(as_dict(new.get("spec")).get("volumeMode"), as_dict(old.get("spec")).get("volumeMode"),
                      "volumeMode")
    return errs


def _pv_capacity(raw: Any, path: str) -> list[FieldError]:
    capacity = as_dict(raw)
    errs = [] if capacity else [required(path, "")]
    if "storage" not in capacity or len(capacity) > 1:
        rendered = "core.ResourceList" + go_string_map(raw).removeprefix("map[string]string")
        errs.append(not_supported_go(path, rendered, ["storage"]))
    for name, raw in sorted(capacity.items()):
        quantity, q_errs = quantity_or_error(raw, key(path, name))
        errs += q_errs
        if quantity is not None:
            if quantity.int_value() < 0:
                errs.append(invalid(key(path, name), quantity.int_value(), "must be a valid resource quantity"))
            errs += validate_positive_quantity(quantity, key(path, name))
    return errs


def _pv_sources(spec: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    present = [s for s in _PV_SOURCES if spec.get(s) is not None]
    for extra in present[1:]:
        errs.append(forbidden(child(path, extra), "may not specify more than 1 volume type"))
    if not present:
        return [required(path, "must specify a volume type")]
    source, src_path = as_dict(spec.get(present[0])), child(path, present[0])
    if present[0] in ("hostPath", "local"):
        target = as_str(source.get("path"))
        errs += [required(child(src_path, "path"), "")] if not target else validate_path_no_backsteps(
            target, child(src_path, "path"))
    elif present[0] == "nfs":
        if not as_str(source.get("server")):
            errs.append(required(child(src_path, "server"), ""))
        if not as_str(source.get("path")).startswith("/"):
            errs.append(invalid(child(src_path, "path"), as_str(source.get("path")), "must be an absolute path"))
    elif present[0] == "csi":
        if not as_str(source.get("driver")):
            errs.append(required(child(src_path, "driver"), ""))
        if not as_str(source.get("volumeHandle")):
            errs.append(required(child(src_path, "volumeHandle"), ""))
    if present[0] == "local" and not isinstance(spec.get("nodeAffinity"), dict):
        errs.append(required(child(path, "nodeAffinity"), "Local volume requires node affinity"))
    return errs


def validate_pv(pv: dict[str, Any]) -> list[FieldError]:
    spec = as_dict(pv.get("spec"))
    errs = validate_object_meta(pv.get("metadata"), name_is_dns_subdomain)
    errs += _access_modes(spec.get("accessModes"), "spec.accessModes", "")
    errs += _pv_capacity(spec.get("capacity"), "spec.capacity")
    policy = as_str(spec.get("persistentVolumeReclaimPolicy"))
    if policy and policy not in RECLAIM_POLICIES:
        errs.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    errs += _pv_sources(spec, "spec")
    errs += _class_name(spec.get("storageClassName"), "spec.storageClassName")
    mode = spec.get("volumeMode")
    if mode is not None and mode not in VOLUME_MODES:
        errs.append(not_supported("spec.volumeMode", mode, VOLUME_MODES))
    return errs


def validate_pv_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata")) + validate_pv(new)
    new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
    new_src = {k: new_spec.get(k) for k in _PV_SOURCES if new_spec.get(k) is not None}
    old_src = {k: old_spec.get(k) for k in _PV_SOURCES if old_spec.get(k) is not None}
    if new_src != old_src:
        errs.append(forbidden("spec.persistentvolumesource", "spec.persistentvolumesource is immutable after "
                              "creation\n" + spec_diff("core.PersistentVolumeSource", old_src, new_src)))
    errs += immutable(new_spec.get("volumeMode"), old_spec.get("volumeMode"), "volumeMode")
    if isinstance(old_spec.get("nodeAffinity"), dict) and new_spec.get("nodeAffinity") != old_spec["nodeAffinity"]:
        errs.append(invalid_go("nodeAffinity", "&core.VolumeNodeAffinity{...}",
                               "field is immutable, except for updating from beta label to GA"))
    return errs


def validate_storage_class(sc: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta(sc.get("metadata"), name_is_dns_subdomain)
    provisioner = as_str(sc.get("provisioner"))
    if not provisioner:
        errs.append(required("provisioner", ""))
    else:
        errs += [invalid("provisioner", provisioner.lower(), msg) for msg in is_qualified_name(provisioner.lower())]
    params = as_dict(sc.get("parameters"))
    if len(params) > 512:
        errs.append(too_long("parameters", 512))
    elif sum(len(k) + len(as_str(v)) for k, v in params.items()) > 256 * 1024:
        errs.append(too_long("parameters", 256 * 1024))
    policy = sc.get("reclaimPolicy")
    if policy and policy not in ("Delete", "Retain"):
        errs.append(not_supported("reclaimPolicy", policy, ["Delete", "Retain"]))
    mode = sc.get("volumeBindingMode")
    if mode is None:
        errs.append(required("volumeBindingMode", ""))
    elif mode not in ("Immediate", "WaitForFirstConsumer"):
        errs.append(not_supported("volumeBindingMode", mode, ["Immediate", "WaitForFirstConsumer"]))
    return errs


def validate_storage_class_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errs = validate_object_meta_update(new.get("metadata"), old.get("metadata"))
    if as_dict(new.get("parameters")) != as_dict(old.get("parameters")):
        errs.append(forbidden("parameters", "updates to parameters are forbidden."))
    if new.get("provisioner") != old.get("provisioner"):
        errs.append(forbidden("provisioner", "updates to provisioner are forbidden."))
    if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
        errs.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
    return errs + immutable(new.get("volumeBindingMode"), old.get("volumeBindingMode"), "volumeBindingMode")

