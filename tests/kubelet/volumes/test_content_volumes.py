"""configMap, secret, downwardAPI and projected volumes on a temporary node root: files,
modes, optional sources, the kubelet's FailedMount texts, and updates through refresh."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kubelet.volumes import VolumeError, VolumeManager
from kubelet.volumes.atomic import DATA_DIR
from tests.kubelet.volumes.fakes import FakeSource, copy_pod, pod

UID = "0b5c6f0e-1111-4222-8333-444455556666"


def _manager(root: Path, source: FakeSource, **kwargs) -> VolumeManager:
    return VolumeManager(root, source, use_tmpfs=False, **kwargs)


def _mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o7777


async def test_configmap_volume_all_keys_with_default_mode(tmp_path: Path) -> None:
    source = FakeSource()
    source.configmap("app-config", {"app.yaml": "port: 80\n", "level": "debug"}, binary={"logo.png": b"\x89PNG\x00"})
    manager = _manager(tmp_path, source)
    paths = await manager.setup(pod([{"name": "cfg", "configMap": {"name": "app-config"}}]))
    target = tmp_path / "pods" / UID / "volumes" / "kubernetes.io~configmap" / "cfg"
    assert paths == {"cfg": target}
    assert (target / "app.yaml").read_text() == "port: 80\n" and (target / "level").read_text() == "debug"
    assert (target / "logo.png").read_bytes() == b"\x89PNG\x00"
    assert _mode(target / "level") == 0o644 and _mode(target) == 0o777
    assert os.readlink(target / "level") == "..data/level"


async def test_configmap_items_with_paths_and_modes(tmp_path: Path) -> None:
    source = FakeSource()
    source.configmap("app-config", {"a": "1", "b": "2", "c": "3"})
    volume = {"name": "cfg", "configMap": {"name": "app-config", "defaultMode": 0o400, "items": [
        {"key": "a", "path": "conf/a.txt"}, {"key": "b", "path": "b.sh", "mode": 0o755}]}}
    paths = await _manager(tmp_path, source).setup(pod([volume]))
    target = paths["cfg"]
    assert sorted(p for p in os.listdir(target) if not p.startswith("..")) == ["b.sh", "conf"]
    assert (target / "conf" / "a.txt").read_text() == "1" and _mode(target / "conf" / "a.txt") == 0o400
    assert _mode(target / "b.sh") == 0o755


@pytest.mark.parametrize(("volume", "message"), [
    ({"name": "cfg", "configMap": {"name": "app-config"}},
     'MountVolume.SetUp failed for volume "cfg" : configmap "app-config" not found'),
    ({"name": "creds", "secret": {"secretName": "db"}},
     'MountVolume.SetUp failed for volume "creds" : secret "db" not found'),
    ({"name": "cfg", "configMap": {"name": "present", "items": [{"key": "nope", "path": "x"}]}},
     'MountVolume.SetUp failed for volume "cfg" : configmap references non-existent config key: nope'),
    ({"name": "creds", "secret": {"secretName": "shh", "items": [{"key": "nope", "path": "x"}]}},
     'MountVolume.SetUp failed for volume "creds" : references non-existent secret key: nope'),
], ids=["configmap", "secret", "configmap-key", "secret-key"])
async def test_missing_objects_and_keys_fail_mount_with_kubelet_messages(tmp_path: Path, volume: dict,
                                                                          message: str) -> None:
    source = FakeSource()
    source.configmap("present", {"k": "v"})
    source.secret("shh", {"k": b"v"})
    with pytest.raises(VolumeError) as caught:
        await _manager(tmp_path, source).setup(pod([volume]))
    assert caught.value.message == message and caught.value.volume == volume["name"]
    assert caught.value.reason == "FailedMount"


async def test_optional_missing_sources_give_empty_volumes(tmp_path: Path) -> None:
    source = FakeSource()
    source.configmap("present", {"k": "v"})
    paths = await _manager(tmp_path, source).setup(pod([
        {"name": "a", "configMap": {"name": "absent", "optional": True}},
        {"name": "b", "secret": {"secretName": "absent", "optional": True}},
        {"name": "c", "configMap": {"name": "present", "optional": True, "items": [{"key": "nope", "path": "x"},
                                                                                   {"key": "k", "path": "k"}]}},
    ]))
    for name in ("a", "b"):
        assert [p for p in os.listdir(paths[name]) if not p.startswith("..")] == []
        assert (paths[name] / DATA_DIR).is_symlink()
    assert sorted(p for p in os.listdir(paths["c"]) if not p.startswith("..")) == ["k"]


async def test_secret_volume_is_decoded_and_lives_under_the_secret_plugin_dir(tmp_path: Path) -> None:
    source = FakeSource()
    source.secret("db", {"password": b"s3cret\n", "tls.key": b"\x00\x01"})
    paths = await _manager(tmp_path, source).setup(pod([{"name": "creds", "secret": {"secretName": "db",
                                                                                     "defaultMode": 0o440}}]))
    assert paths["creds"].parent.name == "kubernetes.io~secret"
    assert (paths["creds"] / "password").read_bytes() == b"s3cret\n"
    assert (paths["creds"] / "tls.key").read_bytes() == b"\x00\x01"
    assert _mode(paths["creds"] / "password") == 0o440


async def test_configmap_update_is_applied_atomically_by_refresh(tmp_path: Path) -> None:
    source = FakeSource()
    cm = source.configmap("app-config", {"a": "v1", "b": "v1"})
    manager = _manager(tmp_path, source)
    the_pod = pod([{"name": "cfg", "configMap": {"name": "app-config"}}])
    target = (await manager.setup(the_pod))["cfg"]
    before = os.readlink(target / DATA_DIR)
    assert await manager.refresh(the_pod) == []
    assert os.readlink(target / DATA_DIR) == before  # unchanged source: nothing rewritten
    with open(target / "a") as reader:
        cm["data"] = {"a": "v2", "c": "new"}
        assert await manager.refresh(the_pod) == []
        assert reader.read() == "v1"
    assert os.readlink(target / DATA_DIR) != before and not (target / before).exists()
    assert (target / "a").read_text() == "v2" and (target / "c").read_text() == "new"
    assert not os.path.lexists(target / "b")


async def test_refresh_keeps_old_files_and_reports_when_the_source_is_deleted(tmp_path: Path) -> None:
    source = FakeSource()
    source.configmap("app-config", {"a": "v1"})
    manager = _manager(tmp_path, source)
    the_pod = pod([{"name": "cfg", "configMap": {"name": "app-config"}}])
    target = (await manager.setup(the_pod))["cfg"]
    source.delete("configmaps", "default", "app-config")
    failures = await manager.refresh(the_pod)
    assert [f.message for f in failures] == ['MountVolume.SetUp failed for volume "cfg" : configmap "app-config" not found']
    assert (target / "a").read_text() == "v1"


async def test_downward_api_volume_and_its_refresh_on_label_change(tmp_path: Path) -> None:
    volume = {"name": "podinfo", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}, "mode": 0o600},
        {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}},
        {"path": "cpu_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}},
        {"path": "mem_limit", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory",
                                                   "divisor": "1Mi"}},
    ]}}
    the_pod = pod([volume], [{"name": "app", "image": "busybox", "resources": {"limits": {"cpu": "500m"}}}],
                  labels={"app": "web", "zone": "us-east-1"}, annotations={"build": "42"})
    manager = _manager(tmp_path, FakeSource(), node_allocatable={"cpu": "2", "memory": "1Gi"})
    target = (await manager.setup(the_pod))["podinfo"]
    assert target.parent.name == "kubernetes.io~downward-api"
    assert (target / "labels").read_text() == 'app="web"\nzone="us-east-1"'
    assert (target / "annotations").read_text() == 'build="42"'
    assert (target / "name").read_text() == "web" and (target / "ns").read_text() == "default"
    assert _mode(target / "ns") == 0o600 and (target / "app").read_text() == "web"
    assert (target / "cpu_limit").read_text() == "500" and (target / "mem_limit").read_text() == "1024"
    updated = copy_pod(the_pod)
    updated["metadata"]["labels"]["app"] = "api"
    assert await manager.refresh(updated) == []
    assert (target / "app").read_text() == "api"


async def test_downward_api_errors_are_aggregated(tmp_path: Path) -> None:
    volume = {"name": "podinfo", "downwardAPI": {"items": [
        {"path": "a", "fieldRef": {"fieldPath": "spec.nodeName"}},
        {"path": "b", "resourceFieldRef": {"containerName": "ghost", "resource": "limits.cpu"}}]}}
    with pytest.raises(VolumeError) as caught:
        await _manager(tmp_path, FakeSource()).setup(pod([volume]))
    assert caught.value.error == "[unsupported fieldPath: spec.nodeName, container ghost not found]"


def _api_access_volume() -> dict:
    """What the ServiceAccount admission plugin injects (kube-api-access-xxxxx)."""
    return {"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                    "path": "namespace"}]}}]}}


async def test_projected_service_account_volume_with_a_token_source(tmp_path: Path) -> None:
    source = FakeSource()
    source.configmap("kube-root-ca.crt", {"ca.crt": "-----BEGIN CERTIFICATE-----\n"})
    requests: list[tuple[str, str | None, int | None]] = []
    now = [1000.0]

    async def token_source(the_pod: dict, audience: str | None, expiration: int | None) -> str:
        requests.append((the_pod["metadata"]["name"], audience, expiration))
        return f"token-{len(requests)}"

    manager = _manager(tmp_path, source, token_source=token_source, clock=lambda: now[0])
    the_pod = pod([_api_access_volume()])
    target = (await manager.setup(the_pod))["kube-api-access-abcde"]
    assert target.parent.name == "kubernetes.io~projected"
    assert (target / "token").read_text() == "token-1"
    assert (target / "ca.crt").read_text().startswith("-----BEGIN")
    assert (target / "namespace").read_text() == "default"
    assert _mode(target / "token") == 0o644
    assert requests == [("web", None, 3607)]
    now[0] += 60
    assert await manager.refresh(the_pod) == [] and len(requests) == 1  # still fresh: cached
    now[0] += 0.8 * 3607
    assert await manager.refresh(the_pod) == []
    assert (target / "token").read_text() == "token-2"


async def test_projected_token_without_a_token_source_fails_clearly(tmp_path: Path) -> None:
    source = FakeSource()
    source.configmap("kube-root-ca.crt", {"ca.crt": "x"})
    with pytest.raises(VolumeError) as caught:
        await _manager(tmp_path, source).setup(pod([_api_access_volume()]))
    assert "no token source" in caught.value.message
    assert caught.value.message.startswith('MountVolume.SetUp failed for volume "kube-api-access-abcde" : ')


async def test_projected_sources_errors_are_joined_and_later_paths_win(tmp_path: Path) -> None:
    source = FakeSource()
    source.configmap("one", {"same": "from-one"})
    source.secret("two", {"same": b"from-two"})
    ok = {"name": "p", "projected": {"sources": [{"configMap": {"name": "one"}}, {"secret": {"name": "two"}}]}}
    assert ((await _manager(tmp_path, source).setup(pod([ok])))["p"] / "same").read_text() == "from-two"
    bad = {"name": "q", "projected": {"sources": [{"configMap": {"name": "nope"}}, {"secret": {"name": "gone"}}]}}
    with pytest.raises(VolumeError) as caught:
        await _manager(tmp_path, source).setup(pod([bad]))
    assert caught.value.error == '[configmap "nope" not found, secret "gone" not found]'


async def test_setup_tries_every_volume_and_raises_the_first_failure(tmp_path: Path) -> None:
    source = FakeSource()
    source.configmap("good", {"k": "v"})
    manager = _manager(tmp_path, source)
    the_pod = pod([{"name": "first", "configMap": {"name": "missing-1"}}, {"name": "ok", "configMap": {"name": "good"}},
                   {"name": "third", "secret": {"secretName": "missing-2"}}])
    with pytest.raises(VolumeError) as caught:
        await manager.setup(the_pod)
    assert caught.value.volume == "first"
    assert [e.volume for e in caught.value.errors] == ["first", "third"]  # type: ignore[attr-defined]
    assert (manager.volume_dir(UID, "configMap", "ok") / "k").read_text() == "v"


class _SlowFirstSource(FakeSource):
    """The first get after `arm()` waits until `release` is set: a slow informer read."""

    def __init__(self) -> None:
        super().__init__()
        self.armed, self.release = False, asyncio.Event()

    async def get(self, kind: str, namespace: str | None, name: str) -> dict | None:
        obj = await super().get(kind, namespace, name)
        if self.armed:
            self.armed = False
            await self.release.wait()
        return obj


async def test_a_slow_refresh_never_overwrites_a_newer_setup(tmp_path: Path) -> None:
    source = _SlowFirstSource()
    cm = source.configmap("app-config", {"a": "v1"})
    manager = _manager(tmp_path, source)
    the_pod = pod([{"name": "cfg", "configMap": {"name": "app-config"}}])
    target = (await manager.setup(the_pod))["cfg"]
    cm["data"] = {"a": "v2"}
    source.armed = True
    refresh = asyncio.create_task(manager.refresh(the_pod))  # reads v2, then stalls
    await asyncio.sleep(0)
    cm["data"] = {"a": "v3"}
    setup = asyncio.create_task(manager.setup(the_pod))  # must wait for the refresh's write
    await asyncio.sleep(0.01)
    source.release.set()
    assert await refresh == []
    await setup
    assert (target / "a").read_text() == "v3"
