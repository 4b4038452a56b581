"""persistentVolumeClaim (and generic ephemeral) volumes: claim -> bound PV -> a node path.

The kubelet's desired-state populator resolves a claim before any plugin runs
(getPVCExtractPV, getPVSpec); its failures read `error processing PVC ns/claim: PVC is not
bound` and surface as `Unable to attach or mount volumes: ... failed to process
volumes=[v]: ...` rather than as a SetUp failure. Only PVs this node can use in place
are supported: `hostPath` (what the local-path provisioner creates, under
$MKP_CLUSTER_HOME/storage) and `local`; any other PV source has no plugin here.

A generic ephemeral volume's claim is `<pod>-<volume>` and must be owned by the pod.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubelet.envvars import ObjectSource
from kubelet.volumes import hostpath
from kubelet.volumes.payload import SetupError

Obj = dict[str, Any]


class ProcessingError(SetupError):
    """The volume could not even be processed (a claim problem), not a SetUp failure."""


async def _claim(source: ObjectSource, namespace: str, name: str) -> Obj:
    claim = await source.get("persistentvolumeclaims", namespace, name)
    if claim is None:
        raise SetupError(f'failed to fetch PVC from API server: persistentvolumeclaims "{name}" not found')
    if (claim.get("metadata") or {}).get("deletionTimestamp"):
        raise SetupError("PVC is being deleted")
    if (claim.get("status") or {}).get("phase") != "Bound":
        raise SetupError("PVC is not bound")
    return claim


async def _volume(source: ObjectSource, name: str, claim_uid: str) -> Obj:
    pv = await source.get("persistentvolumes", None, name)
    if pv is None:
        raise SetupError(f'failed to fetch PV {name} from API server: persistentvolumes "{name}" not found')
    ref = (pv.get("spec") or {}).get("claimRef")
    if not ref:
        raise SetupError(f"found PV object {name} but it has a nil pv.Spec.ClaimRef indicating it is not yet "
                         "bound to the claim")
    if ref.get("uid") != claim_uid:
        raise SetupError(f"found PV object {name} but its pv.Spec.ClaimRef.UID {ref.get('uid')} does not point "
                         f"to claim.UID {claim_uid}")
    return pv


def _owned_by(claim: Obj, pod: Obj) -> bool:
    uid = pod["metadata"].get("uid")
    return any(ref.get("uid") == uid and ref.get("controller")
               for ref in (claim.get("metadata") or {}).get("ownerReferences") or [])


async def resolve(volume: Obj, pod: Obj, source: ObjectSource) -> tuple[str, Path, bool]:
    """(PV name, node path, read-only) of a persistentVolumeClaim or ephemeral volume."""
    meta = pod["metadata"]
    namespace = meta.get("namespace") or "default"
    ephemeral = "ephemeral" in volume
    claim_name = f"{meta.get('name')}-{volume['name']}" if ephemeral else volume["persistentVolumeClaim"].get(
        "claimName") or ""
    read_only = bool((volume.get("persistentVolumeClaim") or {}).get("readOnly"))
    try:
        claim = await _claim(source, namespace, claim_name)
        if ephemeral and not _owned_by(claim, pod):
            raise SetupError(f"PVC {namespace}/{claim_name} was not created for pod {namespace}/{meta.get('name')} "
                             "(pod is not owner)")
        pv_name = (claim.get("spec") or {}).get("volumeName") or ""
        pv = await _volume(source, pv_name, claim["metadata"].get("uid"))
    except SetupError as exc:
        raise ProcessingError(f"error processing PVC {namespace}/{claim_name}: {exc.message}") from None
    spec = pv.get("spec") or {}
    if isinstance(spec.get("hostPath"), dict):
        return pv_name, hostpath.setup(spec["hostPath"]), read_only
    if isinstance(spec.get("local"), dict):
        path = str(spec["local"].get("path") or "")
        if not Path(path).exists():
            raise SetupError(f"path {path} does not exist")
        return pv_name, Path(path), read_only
    raise ProcessingError(f'failed to get Plugin from volumeSpec for volume "{pv_name}" err=no volume plugin matched')
