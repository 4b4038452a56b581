"""hostPath type checks with the kubelet's messages, and persistentVolumeClaim / ephemeral
volumes resolved to the bound PV's node path (what the local-path provisioner makes)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from kubelet.volumes import VolumeError, VolumeManager
from tests.kubelet.volumes.fakes import FakeSource, pod

UID = "0b5c6f0e-1111-4222-8333-444455556666"


async def _setup(root: Path, volume: dict, source: FakeSource | None = None) -> Path:
    manager = VolumeManager(root / "node", source or FakeSource(), use_tmpfs=False)
    return (await manager.setup(pod([volume])))[volume["name"]]


async def _fails(root: Path, volume: dict, source: FakeSource | None = None) -> VolumeError:
    with pytest.raises(VolumeError) as caught:
        await _setup(root, volume, source)
    return caught.value


def _host(path: Path | str, kind: str | None = None) -> dict:
    source = {"path": str(path)}
    if kind is not None:
        source["type"] = kind
    return {"name": "h", "hostPath": source}


async def test_directory_or_create_makes_the_directory_with_parents(tmp_path: Path) -> None:
    target = tmp_path / "data" / "deep"
    assert await _setup(tmp_path, _host(target, "DirectoryOrCreate")) == target
    assert target.is_dir() and os.stat(target).st_mode & 0o777 == 0o755


async def test_file_or_create_makes_an_empty_file_but_not_its_parent(tmp_path: Path) -> None:
    target = tmp_path / "app.log"
    assert await _setup(tmp_path, _host(target, "FileOrCreate")) == target
    assert target.is_file() and target.read_bytes() == b""
    missing_parent = tmp_path / "nope" / "app.log"
    error = await _fails(tmp_path, _host(missing_parent, "FileOrCreate"))
    assert error.message == (f'MountVolume.SetUp failed for volume "h" : open {missing_parent}: '
                             "no such file or directory")


async def test_types_that_match_pass(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    sock_path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        for path, kind in [("dir", "Directory"), ("file", "File"), ("link", "Directory"), ("s.sock", "Socket"),
                           ("dir", "DirectoryOrCreate"), ("file", "FileOrCreate"), ("missing", ""),
                           ("missing", None)]:
            assert await _setup(tmp_path, _host(tmp_path / path, kind)) == tmp_path / path
        assert await _setup(tmp_path, _host("/dev/null", "CharDevice")) == Path("/dev/null")
    finally:
        sock.close()


@pytest.mark.parametrize(("name", "kind", "what"), [
    ("file", "Directory", "is not a directory"),
    ("file", "DirectoryOrCreate", "is not a directory"),
    ("dir", "File", "is not a file"),
    ("dir", "FileOrCreate", "is not a file"),
    ("missing", "Directory", "is not a directory"),
    ("file", "Socket", "is not a socket file"),
    ("file", "CharDevice", "is not a character device"),
    ("/dev/null", "BlockDevice", "is not a block device"),
])
async def test_type_mismatches_fail_with_the_kubelet_message(tmp_path: Path, name: str, kind: str, what: str) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    path = name if name.startswith("/") else str(tmp_path / name)
    error = await _fails(tmp_path, _host(path, kind))
    assert error.message == f'MountVolume.SetUp failed for volume "h" : hostPath type check failed: {path} {what}'
    assert not (tmp_path / "missing").exists()


async def test_invalid_type_and_backsteps_are_refused(tmp_path: Path) -> None:
    assert (await _fails(tmp_path, _host(tmp_path, "Pipe"))).error == "Pipe is an invalid volume type"
    path = f"{tmp_path}/a/../../etc"
    assert (await _fails(tmp_path, _host(path, "Directory"))).error == f"invalid HostPath `{path}`: must not contain '..'"


def _claim(source: FakeSource, name: str, *, phase: str = "Bound", volume: str = "pvc-1234", uid: str = "claim-uid",
           owner: str | None = None) -> dict:
    meta: dict = {"name": name, "namespace": "default", "uid": uid}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": owner, "controller": True}]
    return source.put("persistentvolumeclaims", {"metadata": meta, "spec": {"volumeName": volume},
                                                 "status": {"phase": phase}})


def _pv(source: FakeSource, name: str, spec: dict, *, claim_uid: str = "claim-uid") -> dict:
    return source.put("persistentvolumes", {"metadata": {"name": name}, "spec": {
        **spec, "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "data", "uid": claim_uid}}})


async def test_claim_bound_to_a_local_path_provisioner_volume(tmp_path: Path) -> None:
    source = FakeSource()
    storage = tmp_path / "storage" / "pvc-1234_default_data"
    _claim(source, "data")
    _pv(source, "pvc-1234", {"hostPath": {"path": str(storage), "type": "DirectoryOrCreate"}})
    volume = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
    manager = VolumeManager(tmp_path / "node", source, use_tmpfs=False)
    the_pod = pod([volume], [{"name": "app", "image": "busybox",
                              "volumeMounts": [{"name": "data", "mountPath": "/data"}]}])
    paths = await manager.setup(the_pod)
    assert paths == {"data": storage} and storage.is_dir()
    mount = manager.mounts(the_pod, the_pod["spec"]["containers"][0], paths)[0]
    assert (mount.host_path, mount.container_path, mount.read_only) == (str(storage), "/data", False)
    await manager.teardown(UID)
    assert storage.is_dir()  # the claim's data outlives the pod


async def test_read_only_claim_and_local_pv(tmp_path: Path) -> None:
    source = FakeSource()
    (tmp_path / "disk").mkdir()
    _claim(source, "data")
    _pv(source, "pvc-1234", {"local": {"path": str(tmp_path / "disk")}})
    volume = {"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}}
    manager = VolumeManager(tmp_path / "node", source, use_tmpfs=False)
    the_pod = pod([volume], [{"name": "app", "image": "busybox",
                              "volumeMounts": [{"name": "data", "mountPath": "/data"}]}])
    paths = await manager.setup(the_pod)
    assert paths["data"] == tmp_path / "disk"
    assert manager.mounts(the_pod, the_pod["spec"]["containers"][0], paths)[0].read_only


@pytest.mark.parametrize(("prepare", "error"), [
    ("no-claim", 'failed to fetch PVC from API server: persistentvolumeclaims "data" not found'),
    ("pending", "PVC is not bound"),
    ("deleting", "PVC is being deleted"),
    ("no-pv", 'failed to fetch PV pvc-1234 from API server: persistentvolumes "pvc-1234" not found'),
    ("other-claim", "found PV object pvc-1234 but its pv.Spec.ClaimRef.UID someone-else does not point to "
                    "claim.UID claim-uid"),
])
async def test_claim_problems_fail_processing_with_the_kubelet_messages(tmp_path: Path, prepare: str,
                                                                        error: str) -> None:
    source = FakeSource()
    if prepare != "no-claim":
        claim = _claim(source, "data", phase="Pending" if prepare == "pending" else "Bound")
        if prepare == "deleting":
            claim["metadata"]["deletionTimestamp"] = "2026-11-26T05:00:00Z"
    if prepare not in ("no-claim", "no-pv"):
        _pv(source, "pvc-1234", {"hostPath": {"path": str(tmp_path / "x")}},
            claim_uid="someone-else" if prepare == "other-claim" else "claim-uid")
    failure = await _fails(tmp_path, {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}, source)
    assert failure.error == f"error processing PVC default/data: {error}"
    assert failure.message == ("Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], "
                               f"failed to process volumes=[data]: error processing PVC default/data: {error}")


async def test_ephemeral_volume_uses_the_pods_own_claim(tmp_path: Path) -> None:
    source = FakeSource()
    storage = tmp_path / "storage" / "eph"
    _claim(source, "web-scratch", owner=UID)
    _pv(source, "pvc-1234", {"hostPath": {"path": str(storage), "type": "DirectoryOrCreate"}})
    volume = {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}
    assert await _setup(tmp_path, volume, source) == storage
    _claim(source, "web-scratch", owner="another-pod")
    failure = await _fails(tmp_path, volume, source)
    assert failure.error == ("error processing PVC default/web-scratch: PVC default/web-scratch was not created for "
                             "pod default/web (pod is not owner)")


async def test_unsupported_volume_sources_and_pv_sources_say_no_plugin_matched(tmp_path: Path) -> None:
    failure = await _fails(tmp_path, {"name": "share", "nfs": {"server": "nfs", "path": "/"}})
    assert failure.error == 'failed to get Plugin from volumeSpec for volume "share" err=no volume plugin matched'
    source = FakeSource()
    _claim(source, "data")
    _pv(source, "pvc-1234", {"csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1"}})
    failure = await _fails(tmp_path, {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}, source)
    assert "no volume plugin matched" in failure.message

