"""Fixtures for the cni tests: the reference plugin binaries (Debian's
containernetworking-plugins), skipped when absent except on CI, where that fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DEBIAN_CNI_DIR = Path("/usr/lib/cni")


def reference_plugin(name: str) -> Path:
    path = DEBIAN_CNI_DIR / name
    if path.is_file() and os.access(path, os.X_OK):
        return path
    message = f"{path} is missing (apt-get install containernetworking-plugins)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (CI=true: a missing tool is a failure, not a skip)")
    pytest.skip(message)


@pytest.fixture
def host_local_binary() -> Path:
    return reference_plugin("host-local")
