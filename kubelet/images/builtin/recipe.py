"""A built-in image's recipe: its config, its layers, and the host directories it uses.

The image id is the sha256 of an OCI-style config document (entrypoint, cmd, env,
working dir, user, the layers' diff ids, and labels naming the host software it binds),
so two tags with the same content share one id, as on a real registry. The repo digest
is the sha256 of a manifest naming that config and the layers, as a registry's is.
Images built on the host's own software (python, nginx, podinfo) share a small base
layer: the merged-/usr symlinks (bin -> usr/bin ...), a few /etc files, the empty
directories a root filesystem needs and its own /usr/local; the host's /usr/bin,
sbin, lib*, libexec and share (and any non-symlinked /bin, /lib ...) are bound read-only
at the same paths.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cache

from kubelet.images.layers import Entry, Layer, directory, file, symlink

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROOT_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
USR_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32", "libexec", "share")  # bound from the host

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          "www-data:x:33:33:www-data:/var/www:/bin/false\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnogroup:x:65534:\nnobody:x:65534:\n"


class Unavailable(Exception):
    """This built-in image exists, but not with that tag or not on this host; the text
    is one sentence saying why (it ends the ErrImagePull message)."""


@dataclass
class Recipe:
    repository: str  # docker.io/library/busybox
    tag: str
    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    layers: list[Layer]  # top first
    working_dir: str | None = None
    user: str | None = None
    host_binds: list[tuple[str, str]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)

    def config_document(self) -> bytes:
        config = {
            "architecture": _architecture(), "os": "linux",
            "config": {"Entrypoint": self.entrypoint or None, "Cmd": self.cmd or None,
                       "Env": [f"{k}={v}" for k, v in self.env.items()],
                       "WorkingDir": self.working_dir or "", "User": self.user or "",
                       "Labels": {**self.labels,
                                  **{f"mkp.host-bind.{i}": f"{h}:{c}" for i, (h, c) in enumerate(self.host_binds)}}},
            "rootfs": {"type": "layers", "diff_ids": [layer.digest() for layer in reversed(self.layers)]},
        }
        return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()

    def image_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.config_document()).hexdigest()

    def manifest_digest(self) -> str:
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"digest": self.image_id(), "size": len(self.config_document())},
                    "layers": [{"digest": layer.digest(), "size": layer.size()} for layer in reversed(self.layers)]}
        return "sha256:" + hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


@cache
def _architecture() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def etc_entries() -> list[Entry]:
    return [directory("etc"), file("etc/passwd", data=PASSWD), file("etc/group", data=GROUP),
            file("etc/nsswitch.conf", data="passwd: files\ngroup: files\nhosts: files dns\n")]


def root_dirs() -> list[Entry]:
    """The empty directories of a root filesystem (mount points and writable places)."""
    return [directory("dev"), directory("proc"), directory("sys"), directory("run"), directory("home"),
            directory("root", 0o700), directory("tmp", 0o1777), directory("var"),
            directory("var/tmp", 0o1777), directory("usr")]


@cache
def host_base_layer() -> Layer:
    """The base layer of images built on the host's software: merged-/usr symlinks as
    the host has them, /etc files, empty root directories, an empty /usr/local."""
    entries = etc_entries() + root_dirs() + [directory("usr/local"), directory("usr/local/bin"),
                                             directory("usr/local/sbin")]
    for name in ROOT_DIRS:
        path = f"/{name}"
        if os.path.islink(path):
            entries.append(symlink(name, os.readlink(path)))
    for name in USR_DIRS:
        if os.path.islink(f"/usr/{name}"):
            entries.append(symlink(f"usr/{name}", os.readlink(f"/usr/{name}")))
    return Layer.of(entries)


@cache
def host_system_binds() -> tuple[tuple[str, str], ...]:
    """/usr's program, library and data directories (not /usr/local: the image's own, as
    in Docker images), and the root dirs that are real directories (not merged-/usr
    symlinks)."""
    binds = [(f"/usr/{name}", f"/usr/{name}") for name in USR_DIRS
             if os.path.isdir(f"/usr/{name}") and not os.path.islink(f"/usr/{name}")]
    for name in ROOT_DIRS:
        path = f"/{name}"
        if os.path.isdir(path) and not os.path.islink(path):
            binds.append((path, path))
    return tuple(binds)


def extra_bind(path: str, binds: list[tuple[str, str]]) -> None:
    """Add a host dir (a venv, a Python's prefix) unless the binds already cover it;
    /usr itself is covered by its bound children (only /usr/local is the image's).
    A Python installed in /usr/local gets /usr/local bound, hiding the image's own."""
    for candidate in dict.fromkeys((path, os.path.realpath(path))):
        if candidate == "/usr" or any(candidate == host or candidate.startswith(host.rstrip("/") + "/")
                                      for host, _ in binds):
            continue
        binds.append((candidate, candidate))
