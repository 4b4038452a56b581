"""Pod volumes: unique DNS-label names and exactly one source each.

Mirrors ValidateVolumes / validateVolumeSource of the core group. The sources a learner
uses (emptyDir, hostPath, configMap, secret, persistentVolumeClaim, downwardAPI,
projected, nfs, csi, ephemeral, image, gitRepo) get their field checks; the remaining
legacy cloud sources are only counted, so "may not specify more than 1 volume type"
still fires for them. Only volumes without errors are returned for mount matching, as
in Go.
"""

from __future__ import annotations

from typing import Any

from apiserver.admission.validation_meta import validate_template_object_meta
from apiserver.admission.validation_names import is_dns1123_label, name_is_dns_subdomain
from apiserver.admission.validation_storage import validate_pvc_spec
from apiserver.admission.validation_util import (
    as_dict,
    as_int,
    as_list,
    as_str,
    child,
    index,
    validate_local_descending_path,
    validate_local_non_reserved_path,
    validate_path_no_backsteps,
)
from apiserver.errors import FieldError, duplicate, forbidden, invalid, not_supported, required, too_long
from minikube_py.api.quantity import QuantityError, parse_quantity

FILE_MODE_ERROR = "must be a number between 0 and 0777 (octal), both inclusive"
HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"]
# (field in the object, name used in the "more than 1" error) in Go's checking order.
_SOURCES = [
    ("emptyDir", "emptyDir"), ("hostPath", "hostPath"), ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"), ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"), ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"), ("rbd", "rbd"), ("cinder", "cinder"), ("cephfs", "cephFS"),
    ("quobyte", "quobyte"), ("downwardAPI", "downwarAPI"), ("fc", "fc"), ("flexVolume", "flexVolume"),
    ("configMap", "configMap"), ("azureFile", "azureFile"), ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"), ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"), ("storageos", "storageos"), ("projected", "projected"), ("scaleIO", "scaleIO"),
    ("csi", "csi"), ("ephemeral", "ephemeral"), ("image", "image"),
]
_DOWNWARD_VOLUME_PATHS = ["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
                          "metadata.uid"]


def _file_mode(value: Any, path: str) -> list[FieldError]:
    mode = as_int(value)
    if mode is not None and not 0 <= mode <= 0o777:
        return [invalid(path, mode, FILE_MODE_ERROR)]
    return []


def _key_to_path(item: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not as_str(item.get("key")):
        errs.append(required(child(path, "key"), ""))
    target = as_str(item.get("path"))
    if not target:
        errs.append(required(child(path, "path"), ""))
    errs += validate_local_non_reserved_path(target, child(path, "path"))
    return errs + _file_mode(item.get("mode"), child(path, "mode"))


def _items(source: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, item in enumerate(as_list(source.get("items"))):
        errs += _key_to_path(as_dict(item), index(child(path, "items"), i))
    return errs


def _secret(src: dict[str, Any], path: str) -> list[FieldError]:
    errs = [] if as_str(src.get("secretName")) else [required(child(path, "secretName"), "")]
    return errs + _file_mode(src.get("defaultMode"), child(path, "defaultMode")) + _items(src, path)


def _config_map(src: dict[str, Any], path: str) -> list[FieldError]:
    errs = [] if as_str(src.get("name")) else [required(child(path, "name"), "")]
    return errs + _file_mode(src.get("defaultMode"), child(path, "defaultMode")) + _items(src, path)


def _host_path(src: dict[str, Any], path: str) -> list[FieldError]:
    target = as_str(src.get("path"))
    if not target:
        return [required(child(path, "path"), "")]
    errs = validate_path_no_backsteps(target, child(path, "path"))
    kind = src.get("type")
    if kind is not None and kind not in HOST_PATH_TYPES:
        errs.append(not_supported(child(path, "type"), kind, HOST_PATH_TYPES))
    return errs


def _empty_dir(src: dict[str, Any], path: str) -> list[FieldError]:
    limit = src.get("sizeLimit")
    if limit is None:
        return []
    try:
        negative = parse_quantity(limit).sign() < 0
    except QuantityError:
        negative = True
    return [forbidden(child(path, "sizeLimit"), "SizeLimit field must be a valid resource quantity")] if negative else []


def _nfs(src: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not as_str(src.get("server")):
        errs.append(required(child(path, "server"), ""))
    target = as_str(src.get("path"))
    if not target:
        errs.append(required(child(path, "path"), ""))
    if not target.startswith("/"):
        errs.append(invalid(child(path, "path"), target, "must be an absolute path"))
    return errs


def _pvc(src: dict[str, Any], path: str) -> list[FieldError]:
    return [] if as_str(src.get("claimName")) else [required(child(path, "claimName"), "")]


def _downward_file(item: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    target = as_str(item.get("path"))
    if not target:
        errs.append(required(child(path, "path"), ""))
    errs += validate_local_non_reserved_path(target, child(path, "path"))
    field_ref, resource_ref = item.get("fieldRef"), item.get("resourceFieldRef")
    if isinstance(field_ref, dict):
        field_path = as_str(field_ref.get("fieldPath"))
        base = field_path.split("['")[0]
        if base not in _DOWNWARD_VOLUME_PATHS:
            errs.append(not_supported(child(path, "fieldRef", "fieldPath"), field_path, _DOWNWARD_VOLUME_PATHS))
        if isinstance(resource_ref, dict):
            errs.append(invalid(path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
    elif isinstance(resource_ref, dict):
        if not as_str(resource_ref.get("containerName")):
            errs.append(required(child(path, "resourceFieldRef", "containerName"), ""))
    else:
        errs.append(required(path, "one of fieldRef and resourceFieldRef is required"))
    return errs + _file_mode(item.get("mode"), child(path, "mode"))


def _downward_api(src: dict[str, Any], path: str) -> list[FieldError]:
    errs = _file_mode(src.get("defaultMode"), child(path, "defaultMode"))
    for item in as_list(src.get("items")):
        errs += _downward_file(as_dict(item), path)
    return errs


def _projected(src: dict[str, Any], path: str) -> list[FieldError]:
    errs = _file_mode(src.get("defaultMode"), child(path, "defaultMode"))
    for i, source in enumerate(as_list(src.get("sources"))):
        source, src_path = as_dict(source), index(child(path, "sources"), i)
        kinds = [k for k in ("secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle")
                 if isinstance(source.get(k), dict)]
        for kind in kinds[:1]:
            errs += _projection(kind, source[kind], child(src_path, kind), path)
        if len(kinds) > 1:
            errs.append(forbidden(src_path, "may not specify more than 1 volume type per source"))
    return errs


def _projection(kind: str, source: dict[str, Any], path: str, volume_path: str) -> list[FieldError]:
    if kind in ("secret", "configMap"):
        errs = [] if as_str(source.get("name")) else [required(child(path, "name"), "")]
        return errs + _items(source, path)
    if kind == "downwardAPI":
        return [e for item in as_list(source.get("items")) for e in _downward_file(as_dict(item), path)]
    if kind == "serviceAccountToken":
        errs: list[FieldError] = []
        seconds = as_int(source.get("expirationSeconds")) or 0
        if seconds < 600:
            errs.append(invalid(child(path, "expirationSeconds"), seconds, "may not specify a duration less than 10 minutes"))
        if seconds > 1 << 32:
            errs.append(invalid(child(path, "expirationSeconds"), seconds, "may not specify a duration larger than 2^32 seconds"))
        target = as_str(source.get("path"))
        if not target:
            return errs + [required(child(volume_path, "path"), "")]
        return errs + validate_local_non_reserved_path(target, child(volume_path, "path"))
    return []


def _csi(src: dict[str, Any], path: str) -> list[FieldError]:
    driver = as_str(src.get("driver"))
    errs = [] if driver else [required(child(path, "driver"), "")]
    if len(driver) > 63:
        errs.append(too_long(child(path, "driver"), 63))
    return errs + [invalid(child(path, "driver"), driver, m) for m in name_is_dns_subdomain(driver.lower(), False)]


def _ephemeral(src: dict[str, Any], path: str) -> list[FieldError]:
    template = src.get("volumeClaimTemplate")
    if not isinstance(template, dict):
        return [required(child(path, "volumeClaimTemplate"), "")]
    tpl_path = child(path, "volumeClaimTemplate")
    return (validate_template_object_meta(template.get("metadata"), child(tpl_path, "metadata"))
            + validate_pvc_spec(template.get("spec"), child(tpl_path, "spec")))


def _git_repo(src: dict[str, Any], path: str) -> list[FieldError]:
    errs = [] if as_str(src.get("repository")) else [required(child(path, "repository"), "")]
    return errs + validate_local_descending_path(as_str(src.get("directory")), child(path, "directory"))


def _image(src: dict[str, Any], path: str) -> list[FieldError]:
    errs = [] if as_str(src.get("reference")) else [required(child(path, "reference"), "")]
    policy = src.get("pullPolicy")
    if policy is not None and policy not in ("Always", "IfNotPresent", "Never"):
        errs.append(not_supported(child(path, "pullPolicy"), policy, ["Always", "IfNotPresent", "Never"]))
    return errs


_CHECKS = {"emptyDir": _empty_dir, "hostPath": _host_path, "secret": _secret, "configMap": _config_map,
           "nfs": _nfs, "persistentVolumeClaim": _pvc, "downwardAPI": _downward_api, "projected": _projected,
           "csi": _csi, "ephemeral": _ephemeral, "gitRepo": _git_repo, "image": _image}


def validate_volume_source(volume: dict[str, Any], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    count = 0
    for field, error_name in _SOURCES:
        source = volume.get(field)
        if source is None:
            continue
        if count > 0:
            errs.append(forbidden(child(path, error_name), "may not specify more than 1 volume type"))
            continue
        count += 1
        check = _CHECKS.get(field)
        if check is not None:
            errs += check(as_dict(source), child(path, field))
    if count == 0:
        errs.append(required(path, "must specify a volume type"))
    return errs


def validate_volumes(volumes: Any, path: str) -> tuple[dict[str, dict[str, Any]], list[FieldError]]:
    """Returns (valid volumes by name, errors)."""
    valid: dict[str, dict[str, Any]] = {}
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, volume in enumerate(as_list(volumes)):
        volume, item = as_dict(volume), index(path, i)
        name = as_str(volume.get("name"))
        vol_errs = validate_volume_source(volume, item)
        if not name:
            vol_errs.append(required(child(item, "name"), ""))
        else:
            vol_errs += [invalid(child(item, "name"), name, msg) for msg in is_dns1123_label(name)]
        if name in names:
            vol_errs.append(duplicate(child(item, "name"), name))
        if not vol_errs:
            names.add(name)
            valid[name] = volume
        errs += vol_errs
    return valid, errs

