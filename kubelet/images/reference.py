"""Image references parsed and normalised exactly as Docker and containerd do.

`busybox` means `docker.io/library/busybox:latest`; `stefanprodan/podinfo:6.5.4` means
`docker.io/stefanprodan/podinfo:6.5.4`; `localhost:5000/app` keeps its registry. The
grammar and the error texts follow the distribution project's `reference` package
(ParseNormalizedNamed), which is what the kubelet's `applyDefaultImageTag` calls, so a
bad name fails here with the words a real node uses (`InvalidImageName`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_REFERENCE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
_IDENTIFIER = re.compile(r"^[a-f0-9]{64}$")
_DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidImageName(ValueError):
    """The reference cannot be parsed. `message` is the kubelet's text for the
    container's `InvalidImageName` waiting state."""

    reason = "InvalidImageName"

    def __init__(self, image: str, detail: str) -> None:
        self.image = image
        self.detail = detail
        self.message = (f'Failed to apply default image tag "{image}": '
                        f'couldn\'t parse image name "{image}": {detail}')
        super().__init__(self.message)


@dataclass(frozen=True)
class Reference:
    """A parsed reference: `domain/path[:tag][@digest]` (tag None when only a digest
    was given, as Docker does not add `latest` to a digested reference)."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """`docker.io/library/busybox`: the name without tag and digest."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_repository(self) -> str:
        """`busybox`, `stefanprodan/podinfo`, `ghcr.io/stefanprodan/podinfo`."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        return self.path.removeprefix(OFFICIAL_REPO_PREFIX)

    def __str__(self) -> str:
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _split_docker_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if not slash or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _check_digest(image: str, digest: str) -> None:
    algorithm, _, hex_part = digest.partition(":")
    if algorithm not in _DIGEST_HEX:
        raise InvalidImageName(image, "unsupported digest algorithm")
    if len(hex_part) != _DIGEST_HEX[algorithm]:
        raise InvalidImageName(image, "invalid checksum digest length")
    if not re.fullmatch(r"[a-f0-9]+", hex_part):
        raise InvalidImageName(image, "invalid checksum digest format")


def parse(image: str) -> Reference:
    """Parse and normalise like Docker's ParseNormalizedNamed (no default tag added);
    raises InvalidImageName."""
    if _IDENTIFIER.match(image):
        raise InvalidImageName(image, f"invalid repository name ({image}), "
                                      "cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_docker_domain(image)
    remote_name = remainder.split(":", 1)[0]
    if remote_name.lower() != remote_name:
        raise InvalidImageName(image, f"invalid reference format: repository name ({remote_name}) "
                                      "must be lowercase")
    full = f"{domain}/{remainder}"
    match = _REFERENCE.match(full)
    if match is None:
        if not image:
            raise InvalidImageName(image, "repository name must have at least one component")
        if _REFERENCE.match(full.lower()):
            raise InvalidImageName(image, "invalid reference format: repository name must be lowercase")
        raise InvalidImageName(image, "invalid reference format")
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidImageName(image, "repository name must not be more than 255 characters")
    if digest is not None:
        _check_digest(image, digest)
    domain, _, path = name.partition("/")
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def normalize(image: str) -> Reference:
    """`parse`, then the kubelet's default tag: `latest` when neither tag nor digest."""
    ref = parse(image)
    if ref.tag is None and ref.digest is None:
        ref = Reference(ref.domain, ref.path, DEFAULT_TAG, None)
    return ref
