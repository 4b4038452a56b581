"""`busybox[:any tag]` and `registry.k8s.io/pause[:any tag]`: Debian's busybox-static.

The layer holds /bin/busybox (a copy of the host's statically linked busybox, from the
Debian package busybox-static) and one symlink per applet `busybox --list` names (sh,
echo, sleep, wget, nslookup, cat, ls, tar, nc ...), all in /bin like the Docker Hub
image, plus /etc/passwd and /etc/group (root, nobody ...) and the usual empty dirs.
Every tag is the same content (Debian's busybox version, not the tag's), so every tag
shares one image id. The pause image is the same layer with a /pause script on top
that waits for SIGTERM or SIGINT and exits 0, as the real pause does.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache

from kubelet.images.builtin.recipe import DEFAULT_PATH, Recipe, Unavailable, etc_entries, root_dirs
from kubelet.images.layers import Layer, file, symlink
from kubelet.images.reference import Reference

BUSYBOX_REPOSITORY = "docker.io/library/busybox"
PAUSE_REPOSITORY = "registry.k8s.io/pause"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

PAUSE_SCRIPT = """#!/bin/sh
# mkp's pause: holds the pod's namespaces; exits 0 on SIGINT/SIGTERM like the real one.
trap 'kill $child 2>/dev/null; exit 0' INT TERM
while :; do sleep 2147483647 & child=$!; wait $child; done
"""


@cache
def _busybox() -> tuple[str, tuple[str, ...]] | None:
    """The host's busybox binary and its applets, or None when not installed."""
    for candidate in BUSYBOX_CANDIDATES:
        if shutil.which(candidate):
            listing = subprocess.run([candidate, "--list"], capture_output=True, text=True, check=False)
            applets = tuple(sorted({a for a in listing.stdout.split() if a and a != "busybox" and "/" not in a}))
            if listing.returncode == 0 and applets:
                return candidate, applets
    return None


@cache
def busybox_layer() -> Layer:
    found = _busybox()
    if found is None:
        raise Unavailable("The busybox image needs busybox on the host (Debian package busybox-static), "
                          "and it is not installed.")
    binary, applets = found
    entries = [file("bin/busybox", source=binary, mode=0o755)]
    entries += [symlink(f"bin/{applet}", "busybox") for applet in applets]
    return Layer.of(entries + etc_entries() + root_dirs())


def busybox(ref: Reference) -> Recipe:
    return Recipe(repository=BUSYBOX_REPOSITORY, tag=ref.tag or "latest", entrypoint=[], cmd=["sh"],
                  env={"PATH": DEFAULT_PATH}, layers=[busybox_layer()])


@cache
def pause_layer() -> Layer:
    return Layer.of([file("pause", data=PAUSE_SCRIPT, mode=0o755)])


def pause(ref: Reference) -> Recipe:
    return Recipe(repository=PAUSE_REPOSITORY, tag=ref.tag or "latest", entrypoint=["/pause"], cmd=[],
                  env={"PATH": DEFAULT_PATH}, layers=[pause_layer(), busybox_layer()])
