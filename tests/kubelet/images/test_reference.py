"""Image references normalise exactly as Docker's reference package does (the cases
are `docker pull` / containerd behaviour), and bad names fail with the kubelet's
InvalidImageName text."""

from __future__ import annotations

import pytest

from kubelet.images import InvalidImageName, normalize, parse

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("given", "expected"), [
    pytest.param("busybox", "docker.io/library/busybox:latest", id="official-image"),
    pytest.param("busybox:1.36", "docker.io/library/busybox:1.36", id="official-with-tag"),
    pytest.param("library/busybox", "docker.io/library/busybox:latest", id="library-prefix"),
    pytest.param("stefanprodan/podinfo:6.5.4", "docker.io/stefanprodan/podinfo:6.5.4", id="user-repo"),
    pytest.param("ghcr.io/stefanprodan/podinfo:6.5.4", "ghcr.io/stefanprodan/podinfo:6.5.4", id="other-registry"),
    pytest.param("index.docker.io/library/nginx", "docker.io/library/nginx:latest", id="legacy-docker-hub"),
    pytest.param("docker.io/nginx", "docker.io/library/nginx:latest", id="docker-io-official"),
    pytest.param("localhost/app", "localhost/app:latest", id="localhost-is-a-registry"),
    pytest.param("localhost:5000/team/app:v1", "localhost:5000/team/app:v1", id="registry-with-port"),
    pytest.param("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", id="k8s-registry"),
    pytest.param("10.0.0.1:5000/app", "10.0.0.1:5000/app:latest", id="ip-registry"),
    pytest.param("[::1]:5000/app:1", "[::1]:5000/app:1", id="ipv6-registry"),
    pytest.param("Registry.Example.com/app", "Registry.Example.com/app:latest", id="uppercase-domain"),
    pytest.param("foo/bar/baz", "docker.io/foo/bar/baz:latest", id="nested-path-on-docker-hub"),
    pytest.param("my_app-x.y:1.0-rc_1", "docker.io/library/my_app-x.y:1.0-rc_1", id="separators"),
    pytest.param(f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", id="digest-gets-no-latest"),
    pytest.param(f"busybox:1.36@{DIGEST}", f"docker.io/library/busybox:1.36@{DIGEST}", id="tag-and-digest"),
])
def test_normalize_matches_docker(given, expected):
    assert str(normalize(given)) == expected


def test_parse_keeps_a_missing_tag_missing():
    ref = parse("busybox")
    assert ref.tag is None and ref.repository == "docker.io/library/busybox"
    assert ref.familiar_repository == "busybox"
    assert parse("ghcr.io/stefanprodan/podinfo").familiar_repository == "ghcr.io/stefanprodan/podinfo"


@pytest.mark.parametrize(("given", "detail"), [
    pytest.param("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase",
                 id="uppercase"),
    pytest.param("ee::::", "invalid reference format", id="colons"),
    pytest.param("", "repository name must have at least one component", id="empty"),
    pytest.param("busybox:", "invalid reference format", id="empty-tag"),
    pytest.param("-busybox", "invalid reference format", id="leading-dash"),
    pytest.param("busybox@sha256:abc", "invalid reference format", id="short-digest"),
    pytest.param("busybox@sha256:" + "a" * 65, "invalid checksum digest length", id="long-digest"),
    pytest.param("busybox@md5:" + "a" * 32, "unsupported digest algorithm", id="unknown-algorithm"),
    pytest.param("a" * 64, f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings",
                 id="image-id"),
    pytest.param("x/" + "a" * 260, "repository name must not be more than 255 characters", id="too-long"),
])
def test_invalid_names_fail_with_the_kubelet_message(given, detail):
    with pytest.raises(InvalidImageName) as caught:
        normalize(given)
    assert caught.value.detail == detail
    assert caught.value.reason == "InvalidImageName"
    assert caught.value.message == (f'Failed to apply default image tag "{given}": '
                                    f'couldn\'t parse image name "{given}": {detail}')
