"""`ghcr.io/stefanprodan/podinfo:<version>` and `stefanprodan/podinfo:<version>`: mkp's
podinfo-compatible demo app (kubelet/images/podinfo/, Python + aiohttp).

Shaped like the real image: working dir /home/app, `CMD ["./podinfo"]`, so the usual
manifests' `command: [./podinfo, --port=9898, ...]` work, and /usr/local/bin/podcli for
their `podcli check http localhost:9898/healthz` exec probes. `./podinfo` is a launcher
script in the layer whose `#!` line is this venv's Python (`-I`: the container's
PYTHON* variables do not leak in); it imports the app from a copy of its source made
into the layer at pull time, and passes the version, which comes from the tag (the real
binary has it compiled in; `latest` is LATEST_VERSION). The revision is the app source's
hash. The venv (for aiohttp) and the Python it was made from are bound read-only under
the `namespaces` runtime. Differences from the real image: it runs as root, not `app`;
no gRPC, UI or Redis cache.
"""

from __future__ import annotations

import hashlib
import sys
from functools import cache
from pathlib import Path

from kubelet.images.builtin.recipe import DEFAULT_PATH, Recipe, extra_bind, host_base_layer, host_system_binds
from kubelet.images.layers import Layer, directory, file
from kubelet.images.reference import Reference

REPOSITORIES = ("ghcr.io/stefanprodan/podinfo", "docker.io/stefanprodan/podinfo")
LATEST_VERSION = "6.9.2"
APP_DIR = Path(__file__).resolve().parent.parent / "podinfo"

LAUNCHER = """#!{python} -I
# podinfo {version}: mkp's podinfo-compatible demo app (built-in image).
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from podinfo.main import main

sys.exit(main({version!r}, {revision!r}))
"""

PODCLI = """#!{python} -I
# podcli {version}: the podinfo image's CLI (mkp built-in image).
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(root, "home", "app", "lib"))
from podinfo.podcli import main

sys.exit(main({version!r}))
"""


@cache
def app_sources() -> tuple[tuple[str, bytes], ...]:
    return tuple((path.name, path.read_bytes()) for path in sorted(APP_DIR.glob("*.py")))


def revision() -> str:
    digest = hashlib.sha256()
    for name, data in app_sources():
        digest.update(name.encode() + b"\0" + data)
    return digest.hexdigest()[:12]


def podinfo(ref: Reference) -> Recipe:
    version = LATEST_VERSION if ref.tag in (None, "latest") else ref.tag
    version = version.removeprefix("v")
    launcher = LAUNCHER.format(python=sys.executable, version=version, revision=revision())
    entries = [directory("home/app"), directory("home/app/lib"), directory("home/app/lib/podinfo"),
               file("home/app/podinfo", data=launcher, mode=0o755),
               file("usr/local/bin/podcli", data=PODCLI.format(python=sys.executable, version=version), mode=0o755)]
    entries += [file(f"home/app/lib/podinfo/{name}", data=data) for name, data in app_sources()]
    binds = list(host_system_binds())
    extra_bind(sys.prefix, binds)
    extra_bind(sys.base_prefix, binds)
    return Recipe(repository=ref.repository, tag=ref.tag or "latest", entrypoint=[], cmd=["./podinfo"],
                  env={"PATH": DEFAULT_PATH}, working_dir="/home/app",
                  layers=[Layer.of(entries), host_base_layer()], host_binds=binds,
                  labels={"org.opencontainers.image.version": version})
