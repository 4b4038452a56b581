"""emptyDir on disk and in memory (a real tmpfs as root, sized as the kubelet sizes it),
secrets on tmpfs, idempotent setup, and teardown that unmounts and removes everything."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelet.volumes import VolumeManager, tmpfs
from tests.kubelet.volumes.fakes import FakeSource, pod

UID = "0b5c6f0e-1111-4222-8333-444455556666"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A node root; whatever a failing test left mounted under it is unmounted."""
    yield tmp_path
    for mount_point in tmpfs.mounts_under(tmp_path):
        tmpfs.unmount(mount_point)


def _tmpfs_size_kib(path: Path) -> int | None:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == real:
                super_options = fields[-1].split(",")
                assert fields[fields.index("-") + 1] == "tmpfs"
                return next(int(o[5:-1]) for o in super_options if o.startswith("size="))
    return None


async def test_disk_emptydir_is_a_world_writable_dir_and_setup_is_idempotent(root: Path) -> None:
    manager = VolumeManager(root, FakeSource(), use_tmpfs=False)
    the_pod = pod([{"name": "cache", "emptyDir": {}}, {"name": "mem", "emptyDir": {"medium": "Memory"}}])
    paths = await manager.setup(the_pod)
    assert paths["cache"] == root / "pods" / UID / "volumes" / "kubernetes.io~empty-dir" / "cache"
    assert os.stat(paths["cache"]).st_mode & 0o7777 == 0o777
    (paths["cache"] / "state").write_text("kept")
    assert await manager.setup(the_pod) == paths
    assert (paths["cache"] / "state").read_text() == "kept"
    assert not tmpfs.is_mount_point(paths["mem"])  # without mounting, Memory is a plain directory


async def test_unsupported_medium(root: Path) -> None:
    from kubelet.volumes import VolumeError

    with pytest.raises(VolumeError) as caught:
        await VolumeManager(root, FakeSource(), use_tmpfs=False).setup(
            pod([{"name": "huge", "emptyDir": {"medium": "HugePages"}}]))
    assert caught.value.error == "emptyDir medium HugePages is not supported by this kubelet"


@needs_root
async def test_memory_emptydir_is_a_tmpfs_sized_by_size_limit_pod_limit_or_allocatable(root: Path) -> None:
    manager = VolumeManager(root, FakeSource(), use_tmpfs=True, node_allocatable={"memory": "64Mi"})
    limited = {"name": "app", "image": "busybox", "resources": {"limits": {"memory": "32Mi"}}}
    the_pod = pod([{"name": "small", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                   {"name": "pod-limit", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}], [limited])
    paths = await manager.setup(the_pod)
    assert _tmpfs_size_kib(paths["small"]) == 1024
    assert _tmpfs_size_kib(paths["pod-limit"]) == 32 * 1024  # sizeLimit above the pod's limit does not count
    assert os.stat(paths["small"]).st_mode & 0o7777 == 0o777
    (paths["small"] / "x").write_bytes(b"a" * 1000)
    with pytest.raises(OSError):
        (paths["small"] / "too-big").write_bytes(b"a" * (2 << 20))
    assert await manager.setup(the_pod) == paths
    assert tmpfs.mounts_under(root / "pods" / UID).count(os.path.realpath(paths["small"])) == 1  # not remounted
    other = pod([{"name": "m", "emptyDir": {"medium": "Memory"}}], uid="other-uid")
    assert _tmpfs_size_kib((await manager.setup(other))["m"]) == 64 * 1024  # node allocatable
    await manager.teardown("other-uid")
    await manager.teardown(UID)
    assert tmpfs.mounts_under(root) == [] and not (root / "pods" / UID / "volumes").exists()


@needs_root
async def test_secret_and_projected_volumes_live_on_tmpfs_and_teardown_unmounts_them(root: Path) -> None:
    source = FakeSource()
    source.secret("db", {"password": b"pw"})
    source.configmap("cfg", {"k": "v"})
    manager = VolumeManager(root, source, use_tmpfs=True)
    the_pod = pod([{"name": "creds", "secret": {"secretName": "db"}},
                   {"name": "p", "projected": {"sources": [{"secret": {"name": "db"}}]}},
                   {"name": "cfg", "configMap": {"name": "cfg"}}])
    paths = await manager.setup(the_pod)
    assert tmpfs.is_mount_point(paths["creds"]) and tmpfs.is_mount_point(paths["p"])
    assert not tmpfs.is_mount_point(paths["cfg"])  # configMaps are written to disk, as the kubelet does
    assert (paths["creds"] / "password").read_text() == "pw"
    await manager.teardown(UID)
    assert tmpfs.mounts_under(root) == []
    assert not (root / "pods" / UID / "volumes").exists()


async def test_teardown_removes_every_volume_but_not_host_paths(root: Path) -> None:
    source = FakeSource()
    source.configmap("cfg", {"k": "v"})
    host_dir = root / "host"
    host_dir.mkdir()
    (host_dir / "keep").write_text("x")
    manager = VolumeManager(root / "node", source, use_tmpfs=False)
    the_pod = pod([{"name": "cache", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}},
                   {"name": "h", "hostPath": {"path": str(host_dir)}},
                   {"name": "info", "downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}])
    paths = await manager.setup(the_pod)
    (paths["cache"] / "sub").mkdir()
    (paths["cache"] / "sub" / "link-to-host").symlink_to(host_dir)
    await manager.teardown(UID)
    assert not (root / "node" / "pods" / UID / "volumes").exists()
    assert (host_dir / "keep").read_text() == "x"
    await manager.teardown(UID)  # idempotent
    assert await manager.refresh(the_pod) == []  # nothing set up any more: nothing to refresh
