"""What every component process needs around its work: a client for the cluster it
joins (a kubeconfig, or a bare API server URL; `server` overrides the kubeconfig's, as
kube-controller-manager's --master does), and running until SIGTERM/SIGINT with a clean
stop, surfacing why the work ended if it ended on its own (e.g. a lost leader Lease)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from minikube_py.client.rest import ApiClient

log = logging.getLogger(__name__)

# Component processes hold large caches of long-lived dicts (informers, the scheduler's
# snapshot); with Python's default thresholds the cyclic collector walks them again and
# again while watch events are decoded: at 10,000 pods on 500 fake nodes that was a fifth
# to a third of a process's CPU. Reference counting frees almost all our garbage; cycles
# are still collected, less often.
GC_THRESHOLDS = (50_000, 20, 100)


def setup_process() -> None:
    """What every component process does first: logging (level from MKP_LOG_LEVEL) and
    the collector thresholds above."""
    logging.basicConfig(level=os.environ.get("MKP_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gc.set_threshold(*GC_THRESHOLDS)


def client_for(kubeconfig: str | None, server: str | None, **options: Any) -> ApiClient:
    """A client from the kubeconfig's current context, or for `server` without credentials."""
    if kubeconfig:
        client = ApiClient.from_kubeconfig(kubeconfig, **options)
        if server:
            client.server = server.rstrip("/")
        return client
    if server:
        return ApiClient(server, **options)
    raise ValueError("give a kubeconfig or the API server's URL")


async def run_until_signalled(client: ApiClient, work: Callable[[], Coroutine[Any, Any, Any]], name: str) -> None:
    """Run `work()` until SIGTERM/SIGINT (then cancel it and return) or until it ends on
    its own (then re-raise why). The client is closed either way."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with client:
        task = asyncio.create_task(work(), name=name)
        stopper = asyncio.create_task(stop.wait(), name="signals")
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (task, stopper):
                t.cancel()
            await asyncio.gather(task, stopper, return_exceptions=True)
        if not stop.is_set() and not task.cancelled():
            task.result()
        log.info("%s stopped", name)
