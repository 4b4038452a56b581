"""`python:3[.x][.y][-slim|-alpine|-bookworm ...]` and `python:latest`: the host's Python 3.

No Python is downloaded: the image runs the host's own `python3` (Debian's
/usr/bin/python3 when present). So the tag's minor version must be the host's (or be
absent): on a host with 3.11, `python:3.11-slim` and `python:3` run, `python:3.12`
is not found and the message says which Python the host has. A patch version in the
tag is not checked (PYTHON_VERSION in the env says the real one). The variant suffix
(slim, alpine ...) changes nothing. /usr/local/bin has python, python3 and python3.X
pointing at the host's interpreter, as the Docker image's do (no pip unless the host has it). Under the `namespaces` runtime the root is the
shared host base layer plus the host's /usr (and /lib ... when they are not symlinks),
bound read-only; so `sh`, `ls` and the rest of the host's /usr/bin are in the image too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache

from kubelet.images.builtin.recipe import Recipe, Unavailable, extra_bind, host_base_layer, host_system_binds
from kubelet.images.layers import Layer, directory, symlink
from kubelet.images.reference import Reference

REPOSITORY = "docker.io/library/python"
PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
_TAG = re.compile(r"^(?:(?P<major>\d+)(?:\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?)?)?"
                  r"(?:-?(?P<variant>[a-z][a-z0-9.-]*))?$")


@cache
def host_python() -> tuple[str, str]:
    """(path, version) of the host's Python 3: Debian's /usr/bin/python3, else the
    interpreter this venv was made from."""
    candidates = ["/usr/bin/python3", os.path.join(sys.base_prefix, "bin", "python3")]
    for path in candidates:
        if os.access(path, os.X_OK):
            out = subprocess.run([path, "-c", "import platform; print(platform.python_version())"],
                                 capture_output=True, text=True, check=False)
            if out.returncode == 0:
                return path, out.stdout.strip()
    return sys.executable, ".".join(map(str, sys.version_info[:3]))


def _check_tag(ref: Reference, version: str) -> None:
    tag = ref.tag or "latest"
    match = _TAG.match(tag)
    host_major, host_minor = version.split(".")[:2]
    wanted = None
    if match is not None and match["major"] is not None:
        wanted = match["major"] + (f".{match['minor']}" if match["minor"] else "")
        if match["major"] != host_major or (match["minor"] and match["minor"] != host_minor):
            match = None
    if match is None:
        asked = f"Python {wanted}" if wanted else f"tag {tag}"
        raise Unavailable(
            f"The python image of this node is the host's own Python {version} (nothing is downloaded), "
            f"so python:{host_major}, python:{host_major}.{host_minor} and their -slim/-alpine/... variants "
            f"exist; {asked} does not.")


def _commands_layer(path: str, version: str) -> Layer:
    """/usr/local/bin/python, python3 and python3.X, as the Docker image has them,
    pointing at the host's interpreter."""
    real = os.path.realpath(path)
    minor = ".".join(version.split(".")[:2])
    return Layer.of([directory("usr/local/bin")] +
                    [symlink(f"usr/local/bin/{name}", real) for name in ("python", "python3", f"python{minor}")])


def python(ref: Reference) -> Recipe:
    path, version = host_python()
    _check_tag(ref, version)
    binds = list(host_system_binds())
    extra_bind(os.path.dirname(os.path.dirname(os.path.realpath(path))), binds)
    env = {"PATH": PATH if path.startswith("/usr/") else f"{os.path.dirname(path)}:{PATH}",
           "LANG": "C.UTF-8", "PYTHON_VERSION": version}
    return Recipe(repository=REPOSITORY, tag=ref.tag or "latest", entrypoint=[], cmd=["python3"], env=env,
                  layers=[_commands_layer(path, version), host_base_layer()], host_binds=binds,
                  labels={"mkp.python": f"{path} {version}"})
