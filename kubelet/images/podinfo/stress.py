"""--stress-cpu N and --stress-memory MB, as podinfo does them: N busy cores (here N
child processes spinning, since Python threads share one core; they die with the app:
same process group, and PR_SET_PDEATHSIG) and MB megabytes (10^6 bytes) held resident."""

from __future__ import annotations

import ctypes
import os
import signal

from .logger import Logger

PR_SET_PDEATHSIG = 1
_held: list[bytearray] = []


def _spin() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    while True:
        pass


def begin(cpus: int, memory_mb: int, logger: Logger) -> list[int]:
    """Start the burners; returns the pids of the CPU spinners."""
    pids = []
    if cpus > 0:
        logger.info("starting CPU stress", cores=cpus)
        for _ in range(cpus):
            pid = os.fork()
            if pid == 0:
                try:
                    _spin()
                finally:
                    os._exit(0)
            pids.append(pid)
    if memory_mb > 0:
        payload = bytearray(b"\x01") * (1_000_000 * memory_mb)  # written, so resident
        _held.append(payload)
        logger.info("starting CPU stress", memory=len(payload))  # sic: podinfo's message
    return pids
