"""Run the real kubectl 1.32 as an oracle for patch semantics.

`kubectl patch --local -f FILE --type T -p PATCH -o json` applies a patch with the very
libraries kube-apiserver 1.32 uses (evanphx/json-patch v4, apimachinery's strategicpatch
typed by the Go structs) without contacting a server. The agreement tests feed it the
same tables as the unit tests; they are skipped where that binary is not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_CANDIDATES = ("kubectl.1.32", "/usr/lib/google-cloud-sdk/bin/kubectl.1.32")


def kubectl_binary() -> str | None:
    for candidate in _CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def kubectl_patch(doc: dict[str, Any], patch: Any, patch_type: str) -> tuple[dict[str, Any] | None, str | None]:
    """(patched object, None) or (None, the library's error message)."""
    binary = kubectl_binary()
    assert binary is not None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "object.json"
        path.write_text(json.dumps(doc))
        env = {**os.environ, "KUBECONFIG": os.devnull}
        done = subprocess.run(
            [binary, "patch", "--local", "-f", str(path), "--type", patch_type, "-p", json.dumps(patch), "-o", "json"],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )
    if done.returncode == 0:
        return json.loads(done.stdout), None
    message = done.stderr.strip().removeprefix("error: ").strip()
    # kubectl (not the server) rewords the one JSON patch error that says "doc is missing
    # key"; undo that to get the library's message, which kube-apiserver passes through.
    rewritten = re.fullmatch(r"Object to be patched is missing field \((.*)\)", message, re.DOTALL)
    if rewritten:
        message = f"replace operation does not apply: doc is missing key: {rewritten.group(1)}"
    return None, message
