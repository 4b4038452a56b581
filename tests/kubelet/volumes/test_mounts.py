"""volumeMounts -> Mounts: readOnly (forced for API-backed volumes), subPath creation and
its safety checks, subPathExpr from the container's environment, the kubelet's errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kubelet.envvars import ConfigError
from kubelet.runtime.base import Mount
from kubelet.volumes import VolumeManager
from tests.kubelet.volumes.fakes import FakeSource, pod


def _pod(mounts: list[dict], volumes: list[dict] | None = None) -> dict:
    return pod(volumes or [{"name": "work", "emptyDir": {}}],
               [{"name": "app", "image": "busybox", "volumeMounts": mounts}])


async def _mounts(tmp_path: Path, the_pod: dict, env: dict | None = None,
                  source: FakeSource | None = None) -> tuple[list[Mount], dict[str, Path]]:
    manager = VolumeManager(tmp_path / "node", source or FakeSource(), use_tmpfs=False)
    paths = await manager.setup(the_pod)
    return manager.mounts(the_pod, the_pod["spec"]["containers"][0], paths, env), paths


async def test_plain_mounts_and_read_only(tmp_path: Path) -> None:
    source = FakeSource()
    source.configmap("cfg", {"k": "v"})
    the_pod = _pod([{"name": "work", "mountPath": "/work"}, {"name": "work", "mountPath": "/ro", "readOnly": True},
                    {"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "work", "mountPath": "relative"}],
                   [{"name": "work", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}])
    mounts, paths = await _mounts(tmp_path, the_pod, source=source)
    assert mounts == [Mount(str(paths["work"]), "/work", False), Mount(str(paths["work"]), "/ro", True),
                      Mount(str(paths["cfg"]), "/etc/cfg", True), Mount(str(paths["work"]), "/relative", False)]


async def test_missing_subpath_is_created_with_the_volume_mode(tmp_path: Path) -> None:
    mounts, paths = await _mounts(tmp_path, _pod([{"name": "work", "mountPath": "/cache", "subPath": "a/b"},
                                                  {"name": "work", "mountPath": "/c", "subPath": "./a"}]))
    assert mounts[0].host_path == str(paths["work"] / "a" / "b")
    assert os.stat(paths["work"] / "a" / "b").st_mode & 0o7777 == 0o777
    assert mounts[1].host_path == str(paths["work"] / "a")


async def test_subpath_of_a_configmap_key_is_the_resolved_file(tmp_path: Path) -> None:
    source = FakeSource()
    source.configmap("cfg", {"nginx.conf": "events {}"})
    the_pod = _pod([{"name": "cfg", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"}],
                   [{"name": "cfg", "configMap": {"name": "cfg"}}])
    mounts, paths = await _mounts(tmp_path, the_pod, source=source)
    real = os.path.realpath(paths["cfg"] / "nginx.conf")
    assert mounts[0].host_path == real and Path(real).read_text() == "events {}"
    assert os.path.basename(os.path.dirname(real)).startswith("..2")
    assert mounts[0].read_only


@pytest.mark.parametrize(("sub_path", "message"), [
    ("/etc", "error SubPath `/etc` must not be an absolute path"),
    ("a/../../x", "unable to provision SubPath `a/../../x`: must not contain '..'"),
    ("..", "unable to provision SubPath `..`: must not contain '..'"),
])
async def test_absolute_and_backstepping_subpaths_are_refused(tmp_path: Path, sub_path: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await _mounts(tmp_path, _pod([{"name": "work", "mountPath": "/w", "subPath": sub_path}]))
    assert caught.value.message == message


async def test_symlinks_cannot_lead_a_subpath_out_of_the_volume(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    manager = VolumeManager(tmp_path / "node", FakeSource(), use_tmpfs=False)
    the_pod = _pod([{"name": "work", "mountPath": "/w", "subPath": "escape/new"}])
    paths = await manager.setup(the_pod)
    (paths["work"] / "escape").symlink_to(outside)
    with pytest.raises(ConfigError) as caught:
        manager.mounts(the_pod, the_pod["spec"]["containers"][0], paths)
    assert caught.value.message == 'failed to create subPath directory for volumeMount "work" of container "app"'
    assert not (outside / "new").exists()
    the_pod = _pod([{"name": "work", "mountPath": "/w", "subPath": "escape"}])
    with pytest.raises(ConfigError) as caught:
        manager.mounts(the_pod, the_pod["spec"]["containers"][0], paths)
    assert caught.value.message == 'failed to prepare subPath for volumeMount "work" of container "app"'
    (paths["work"] / "inner").mkdir()
    (paths["work"] / "alias").symlink_to("inner")  # a link that stays inside is fine
    the_pod = _pod([{"name": "work", "mountPath": "/w", "subPath": "alias"}])
    assert manager.mounts(the_pod, the_pod["spec"]["containers"][0], paths)[0].host_path == str(paths["work"] / "inner")


async def test_subpath_expr_expands_from_the_container_env(tmp_path: Path) -> None:
    env = {"POD_NAME": "web-0", "EMPTY": ""}
    mounts, paths = await _mounts(tmp_path, _pod([{"name": "work", "mountPath": "/logs",
                                                   "subPathExpr": "logs/$(POD_NAME)"}]), env)
    assert mounts[0].host_path == str(paths["work"] / "logs" / "web-0")
    with pytest.raises(ConfigError) as caught:
        await _mounts(tmp_path, _pod([{"name": "work", "mountPath": "/l", "subPathExpr": "$(NOPE)/$(EMPTY)/$(A)"}]), env)
    assert caught.value.message == "missing value for A, EMPTY, NOPE"


async def test_mount_of_an_unknown_volume(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        await _mounts(tmp_path, _pod([{"name": "ghost", "mountPath": "/g"}]))
    assert caught.value.message == 'cannot find volume "ghost" to mount into container "app"'


async def test_mount_propagation_is_accepted_and_ignored(tmp_path: Path) -> None:
    mounts, paths = await _mounts(tmp_path, _pod([{"name": "work", "mountPath": "/w",
                                                   "mountPropagation": "HostToContainer"}]))
    assert mounts == [Mount(str(paths["work"]), "/w", False)]
