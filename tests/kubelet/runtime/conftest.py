"""Fixtures of the runtime tests: real mkp-shim processes, cleaned up after each test."""

from __future__ import annotations

from tests.kubelet.runtime.shim_support import clean_shims, shim_home  # noqa: F401 - fixtures used by name
