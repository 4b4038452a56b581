"""Helpers for tests that start real mkp-shim processes: one compiled shim per session
(under a session MKP_HOME), and a cleanup that kills every shim whose state directory lies
under a test's tmp_path, and its container's process group, even when the test failed."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubelet.runtime import procfs
from kubelet.runtime.shim import ExitRecord, read_exit, read_pid
from tests.conftest import wait_until


def shims_under(base: Path) -> list[int]:
    """Pids of running shims whose --state is under `base`."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        argv = procfs.cmdline(int(entry.name))
        if argv and os.path.basename(argv[0]).startswith("mkp-shim"):
            state = procfs.option(argv, "--state")
            if state and state.startswith(str(base)):
                found.append(int(entry.name))
    return found


def kill_shims_under(base: Path) -> list[int]:
    """Kill what tests left running under `base`: containers' groups, then their shims.
    Returns the shims whose container still ran (a shim that has recorded its container's
    exit is on its way out and is given a moment)."""
    shims = [pid for pid in shims_under(base) if not _exited(pid)]
    for pid in shims:
        state = procfs.option(procfs.cmdline(pid), "--state")
        child = read_pid(Path(state)) if state else None
        if child:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while shims_under(base) and time.monotonic() < deadline:
        time.sleep(0.02)
    for pid in shims_under(base):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return shims


def _exited(shim: int) -> bool:
    state = procfs.option(procfs.cmdline(shim), "--state")
    return bool(state) and read_exit(Path(state)) is not None


@pytest.fixture(scope="session")
def shim_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mkp-home")


@pytest.fixture
def clean_shims(tmp_path: Path, shim_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """tmp_path, with MKP_HOME set to the session's and every shim under it killed after."""
    monkeypatch.setenv("MKP_HOME", str(shim_home))
    yield tmp_path
    leaked = kill_shims_under(tmp_path)
    assert not leaked, f"shims still running after the test: {leaked}"


def wait_exit(state: Path, timeout: float = 10.0) -> ExitRecord:
    """The exit record once the shim wrote it."""
    return wait_until(lambda: read_exit(state), timeout, f"{state}/exit", interval=0.01)
