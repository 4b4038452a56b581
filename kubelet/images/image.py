"""What the kubelet and the runtimes get for a resolved image, and the pull errors.

`Image` carries the image config a container starts from (entrypoint, cmd, env,
working dir, user), where its files are (`layers`: read-only lower dirs for an overlay
root, top first; `host_binds`: host directories bound read-only at the same path, for
images built on the host's own software), and, for the `process` runtime, which has no
root filesystem, how to find things on the host (`process_path`, `host_path`).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

ALWAYS = "Always"
IF_NOT_PRESENT = "IfNotPresent"
NEVER = "Never"
PULL_POLICIES = (ALWAYS, IF_NOT_PRESENT, NEVER)


class ImageNotFound(Exception):
    """No such image (reason ErrImagePull). `message` is containerd's pull error for an
    unknown reference plus a sentence naming the images this node can run."""

    reason = "ErrImagePull"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ErrImageNeverPull(Exception):
    """imagePullPolicy Never and the image is not on the node."""

    reason = "ErrImageNeverPull"

    def __init__(self, image: str) -> None:
        self.message = f'Container image "{image}" is not present with pull policy of Never'
        super().__init__(self.message)


@dataclass
class Image:
    ref: str  # normalised: docker.io/library/busybox:1.36
    id: str  # sha256:<64 hex> of the image config (same content, same id)
    repo_digest: str  # docker.io/library/busybox@sha256:<manifest digest>
    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]  # includes PATH
    working_dir: str | None
    user: str | None
    size: int  # bytes materialised in the layers
    layers: list[Path]  # top first
    host_binds: list[tuple[str, str]] = field(default_factory=list)  # (host dir, path in image), read-only
    process_path: str = ""  # PATH for the process runtime (host dirs)
    repository: str = ""  # docker.io/library/busybox
    tag: str | None = None

    def host_path(self, path: str) -> str | None:
        """The host path holding `path` of the image (a layer file or a host-bound
        directory), following the image's own symlinks; None if the image has no such
        path. The process runtime uses it for an absolute argv[0] (`/bin/sh` of busybox
        is the layer's `bin/sh` symlink to busybox: the last component is not followed,
        so the program still sees its name) and for the image's working dir."""
        return self._host_path(posixpath.normpath("/" + path.lstrip("/")), 0)

    def _host_path(self, path: str, depth: int) -> str | None:
        if depth > 16:
            return None
        for layer in self.layers:
            parts = path.strip("/").split("/") if path != "/" else []
            for i in range(len(parts) + 1):  # a symlinked parent dir (bin -> usr/bin) redirects
                prefix = "/".join(parts[:i])
                candidate = layer / prefix if prefix else layer
                if 0 < i < len(parts) and candidate.is_symlink():
                    target = os.readlink(candidate)
                    base = posixpath.dirname("/" + prefix)
                    resolved = posixpath.normpath(posixpath.join(base, target, *parts[i:]))
                    return self._host_path(resolved, depth + 1)
                if not (candidate.exists() or candidate.is_symlink()):
                    break
            else:
                return str(layer / "/".join(parts)) if parts else str(layer)
        for host, inside in self.host_binds:
            inside = inside.rstrip("/") or "/"
            if path == inside or path.startswith(inside + "/"):
                mapped = host + path[len(inside):]
                return mapped if os.path.lexists(mapped) else None
        return None
