"""The image store: pull policies, persistence, ids and digests, node status, and the
ErrImagePull / ErrImageNeverPull messages."""

from __future__ import annotations

import json
import re

import pytest

from kubelet.images import ALWAYS, IF_NOT_PRESENT, NEVER, ErrImageNeverPull, ImageNotFound, ImageStore
from kubelet.images.builtin.python import host_python

ID = re.compile(r"^sha256:[0-9a-f]{64}$")


async def test_first_pull_materialises_layers_then_ifnotpresent_finds_them(store, tmp_path):
    assert not store.present("busybox:1.36")
    image, pulled = await store.pull("busybox:1.36", IF_NOT_PRESENT)
    assert pulled
    assert image.ref == "docker.io/library/busybox:1.36"
    assert ID.match(image.id)
    assert re.match(r"^docker\.io/library/busybox@sha256:[0-9a-f]{64}$", image.repo_digest)
    assert all(layer.is_dir() and layer.parent == tmp_path / "node" / "images" / "layers" for layer in image.layers)
    assert (image.layers[0] / "bin" / "busybox").stat().st_size == image.size - _etc_bytes(image)
    assert store.present("busybox:1.36")
    again, pulled = await store.pull("busybox:1.36", IF_NOT_PRESENT)
    assert not pulled and again.id == image.id


def _etc_bytes(image) -> int:
    return sum(p.stat().st_size for p in (image.layers[0] / "etc").iterdir())


async def test_pulled_state_survives_a_new_store_on_the_same_root(store, tmp_path):
    await store.pull("busybox", IF_NOT_PRESENT)
    restarted = ImageStore(tmp_path / "node")
    assert restarted.present("busybox:latest")
    assert restarted.present("docker.io/library/busybox")
    _, pulled = await restarted.pull("busybox", IF_NOT_PRESENT)
    assert not pulled


async def test_always_pulls_every_time(store):
    _, first = await store.pull("busybox", ALWAYS)
    _, second = await store.pull("busybox", ALWAYS)
    assert first and second


async def test_never_runs_a_present_image_and_refuses_an_absent_one(store):
    with pytest.raises(ErrImageNeverPull) as caught:
        await store.pull("busybox:1.36", NEVER)
    assert caught.value.message == 'Container image "busybox:1.36" is not present with pull policy of Never'
    assert caught.value.reason == "ErrImageNeverPull"
    await store.pull("busybox:1.36", IF_NOT_PRESENT)
    image, pulled = await store.pull("busybox:1.36", NEVER)
    assert not pulled and image.ref == "docker.io/library/busybox:1.36"
    with pytest.raises(ErrImageNeverPull):
        await store.pull("nosuchimage:1", NEVER)


async def test_a_bad_policy_is_an_error(store):
    with pytest.raises(ValueError, match="unknown imagePullPolicy"):
        await store.pull("busybox", "Sometimes")


def test_unknown_image_is_a_registry_not_found_naming_what_exists(store):
    with pytest.raises(ImageNotFound) as caught:
        store.resolve("foo:1")
    message = caught.value.message
    assert caught.value.reason == "ErrImagePull"
    assert message.startswith('failed to pull and unpack image "docker.io/library/foo:1": failed to resolve '
                              'reference "docker.io/library/foo:1": docker.io/library/foo:1: not found.')
    for name in ("busybox", "python:3", "ghcr.io/stefanprodan/podinfo:<version>", "stefanprodan/podinfo",
                 "nginx", "registry.k8s.io/pause"):
        assert name in message
    assert not store.present("foo:1")


def test_python_with_another_minor_is_not_found_and_says_which_python_the_host_has(store):
    _, version = host_python()
    major, minor = version.split(".")[:2]
    with pytest.raises(ImageNotFound) as caught:
        store.resolve(f"python:{major}.{int(minor) + 1}-slim")
    assert f"host's own Python {version}" in caught.value.message
    with pytest.raises(ImageNotFound):
        store.resolve("python:2.7")


def test_tags_with_the_same_content_share_an_id(store):
    ids = {store.resolve(ref).id for ref in ("busybox", "busybox:1.36", "busybox:1.35-musl")}
    assert len(ids) == 1
    _, version = host_python()
    minor = ".".join(version.split(".")[:2])
    assert store.resolve("python:3").id == store.resolve(f"python:{minor}-slim").id


def test_podinfo_versions_are_different_images_and_both_registries_resolve(store):
    a = store.resolve("ghcr.io/stefanprodan/podinfo:6.5.4")
    b = store.resolve("ghcr.io/stefanprodan/podinfo:6.6.0")
    hub = store.resolve("stefanprodan/podinfo:6.5.4")
    assert a.id != b.id
    assert hub.ref == "docker.io/stefanprodan/podinfo:6.5.4" and hub.id == a.id
    assert hub.repo_digest.startswith("docker.io/stefanprodan/podinfo@sha256:")
    assert a.cmd == ["./podinfo"] and a.working_dir == "/home/app"


async def test_a_digest_reference_finds_the_pulled_content(store):
    image, _ = await store.pull("busybox:1.36", IF_NOT_PRESENT)
    digest = image.repo_digest.partition("@")[2]
    by_digest, pulled = await store.pull(f"busybox@{digest}", IF_NOT_PRESENT)
    assert pulled and by_digest.id == image.id and by_digest.ref == f"docker.io/library/busybox@{digest}"
    with pytest.raises(ImageNotFound, match="has digest"):
        store.resolve("busybox@sha256:" + "0" * 64)


async def test_node_status_lists_each_image_once_with_digest_and_tags(store):
    await store.pull("busybox", IF_NOT_PRESENT)
    await store.pull("busybox:1.36", IF_NOT_PRESENT)
    await store.pull("registry.k8s.io/pause:3.10", IF_NOT_PRESENT)
    entries = store.node_status_images()
    busybox = next(e for e in entries if "docker.io/library/busybox:1.36" in e["names"])
    assert busybox["names"][0].startswith("docker.io/library/busybox@sha256:")
    assert "docker.io/library/busybox:latest" in busybox["names"]
    assert busybox["sizeBytes"] > 1_000_000
    assert len(entries) == 2
    assert {i.ref for i in store.images()} == {"docker.io/library/busybox:latest", "docker.io/library/busybox:1.36",
                                                "registry.k8s.io/pause:3.10"}


async def test_an_image_whose_recipe_changed_is_no_longer_present(store, tmp_path):
    await store.pull("busybox", IF_NOT_PRESENT)
    state_file = tmp_path / "node" / "images" / "repositories.json"
    state = json.loads(state_file.read_text())
    state["docker.io/library/busybox:latest"]["id"] = "sha256:" + "1" * 64  # pulled from an older recipe
    state_file.write_text(json.dumps(state))
    assert not store.present("busybox")
    assert store.images() == []
    _, pulled = await store.pull("busybox", IF_NOT_PRESENT)
    assert pulled


async def test_concurrent_pulls_of_one_image_both_succeed(store):
    import asyncio

    results = await asyncio.gather(*(store.pull(f"busybox:{tag}", IF_NOT_PRESENT) for tag in ("a", "b", "c")))
    assert len({image.id for image, _ in results}) == 1
    assert all(pulled for _, pulled in results)
    assert all(store.present(f"busybox:{tag}") for tag in ("a", "b", "c"))
