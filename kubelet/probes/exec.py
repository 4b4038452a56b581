"""exec probes: run a command in the container; exit code 0 is healthy.

As the kubelet over CRI ExecSync: the command runs through the runtime's `exec` (the
container's namespaces, env and working directory), without stdin or a tty, and must
finish within timeoutSeconds or it is killed and the probe fails with `command "<argv
joined by spaces>" timed out`. A non-zero exit fails the probe with the command's output
(stdout then stderr, at most 10 KiB) as the message: `Liveness probe failed: cat: can't
open '/tmp/healthy': No such file or directory`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from kubelet.probes.spec import FAILURE, MAX_OUTPUT, SUCCESS, UNKNOWN, Outcome, go_quote
from kubelet.runtime.base import ContainerNotFound, RuntimeError_

_REAP_SECONDS = 2.0


async def exec_probe(runtime: Any, container_id: str, argv: Sequence[str], timeout: float) -> Outcome:
    command = go_quote(" ".join(argv))
    try:
        async with asyncio.timeout(timeout):
            process = await runtime.exec(container_id, list(argv), stdin=False, tty=False)
    except TimeoutError:
        return Outcome(FAILURE, f"command {command} timed out")
    except RuntimeError_ as exc:
        # The runtime could not start the command (no such executable): CRI runtimes
        # answer with a failed exec whose output is the error, so the probe fails.
        return Outcome(FAILURE, exc.message)
    except ContainerNotFound as exc:
        return Outcome(UNKNOWN, "", str(exc) or f"container {container_id} is not running")
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr, code = await asyncio.gather(
                _collect(process.stdout), _collect(process.stderr), process.wait())
    except TimeoutError:
        _kill(process)
        return Outcome(FAILURE, f"command {command} timed out")
    except asyncio.CancelledError:
        _kill(process)
        raise
    output = (stdout + stderr)[:MAX_OUTPUT].decode("utf-8", "replace")
    return Outcome(SUCCESS if code == 0 else FAILURE, output)


async def _collect(stream: Any) -> bytes:
    """Read a stream to its end, keeping the first MAX_OUTPUT bytes."""
    if stream is None:
        return b""
    data = bytearray()
    while chunk := await stream.read(65536):
        if len(data) < MAX_OUTPUT:
            data += chunk[:MAX_OUTPUT - len(data)]
    return bytes(data)


_reaping: set[asyncio.Task[Any]] = set()


def _kill(process: Any) -> None:
    """Kill a timed-out command and reap it in the background (the probe has its answer)."""
    with contextlib.suppress(Exception):
        process.kill()
    task = asyncio.get_running_loop().create_task(_reap(process))
    _reaping.add(task)
    task.add_done_callback(_reaping.discard)


async def _reap(process: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(process.wait(), _REAP_SECONDS)
