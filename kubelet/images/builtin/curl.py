"""`curlimages/curl[:any tag]`: Debian's curl, shaped like the curl project's image.

The image learners reach for to poke a Service from inside the cluster (`kubectl run
-it --rm curl --image=curlimages/curl -- sh`, or `... -- curl -s http://order-service`).
Like the real image it has the entrypoint `/entrypoint.sh` and the command `curl`: the
entrypoint runs its arguments as a command, or gives them to curl when the first one is
an option (`-s ...`) or not a program (a URL). The binary is the host's /usr/bin/curl
(with the host's /usr bound read-only, as the nginx and python images do), so the
version is Debian's whatever the tag says; the host's /bin/sh and the rest of /usr/bin
come along. One difference: the real image runs as `curl_user` (uid 100); this one runs
as root unless the pod's securityContext says otherwise.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache

from kubelet.images.builtin.recipe import (
    DEFAULT_PATH,
    Recipe,
    Unavailable,
    host_base_layer,
    host_system_binds,
)
from kubelet.images.layers import Layer, file
from kubelet.images.reference import Reference

REPOSITORIES = ("docker.io/curlimages/curl", "quay.io/curl/curl")

ENTRYPOINT = r"""#!/bin/sh
# mkp's curl image entrypoint: options or a URL first mean "run curl with these".
set -e
case "$1" in
    -*) set -- curl "$@" ;;
    *) if [ $# -eq 0 ] || ! command -v "$1" >/dev/null 2>&1; then set -- curl "$@"; fi ;;
esac
exec "$@"
"""


@cache
def _curl() -> tuple[str, str] | None:
    """(binary, version) of the host's curl, or None."""
    binary = shutil.which("curl", path="/usr/bin:/bin:/usr/local/bin")
    if binary is None:
        return None
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    words = out.stdout.split()
    return binary, words[1] if len(words) > 1 else "unknown"


def curl(ref: Reference) -> Recipe:
    found = _curl()
    if found is None:
        raise Unavailable("The curl image needs curl on the host (apt-get install curl), and it is not installed.")
    binary, version = found
    return Recipe(repository=ref.repository, tag=ref.tag or "latest", entrypoint=["/entrypoint.sh"], cmd=["curl"],
                  env={"PATH": DEFAULT_PATH, "CURL_VERSION": version},
                  layers=[Layer.of([file("entrypoint.sh", data=ENTRYPOINT, mode=0o755)]), host_base_layer()],
                  host_binds=list(host_system_binds()), labels={"mkp.curl": f"{binary} {version}"})
