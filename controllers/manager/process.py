"""The controller-manager process (`mkp controller-manager`): client, event loop, signals.

`main` is synchronous so the CLI can call it directly. It connects as
kube-controller-manager (field manager and user agent), runs `run_controller_manager` on
uvloop and stops cleanly on SIGTERM or SIGINT: controllers stop, pending Events are
flushed, the Lease is released. Exit status 1 when leadership was lost (a supervisor
restarts it, as with kube-controller-manager) or the configuration is unusable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from controllers.manager.registry import select_controllers
from controllers.manager.run import FIELD_MANAGER, LeaderElectionLost, run_controller_manager
from minikube_py.client import ApiClient

log = logging.getLogger("controllers.manager")

USER_AGENT = "kube-controller-manager/minikube_py"


def make_client(kubeconfig: str | None, server: str | None) -> ApiClient:
    """A client from the kubeconfig (its current context), `server` overriding its URL
    (kube-controller-manager's --master); or plain `server` without credentials."""
    if kubeconfig:
        client = ApiClient.from_kubeconfig(kubeconfig, field_manager=FIELD_MANAGER, user_agent=USER_AGENT)
        if server:
            client.server = server.rstrip("/")
        return client
    if server:
        return ApiClient(server, field_manager=FIELD_MANAGER, user_agent=USER_AGENT)
    raise ValueError("give a kubeconfig or the API server's URL")


async def serve(client: ApiClient, controllers: list[str], leader_elect: bool) -> None:
    """Run until SIGTERM/SIGINT (then stop cleanly) or until the manager ends on its own."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with client:
        manager = asyncio.create_task(
            run_controller_manager(client, controllers=controllers, leader_elect=leader_elect),
            name="controller-manager")
        stopper = asyncio.create_task(stop.wait(), name="signals")
        try:
            await asyncio.wait({manager, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (manager, stopper):
                task.cancel()
            await asyncio.gather(manager, stopper, return_exceptions=True)
        if not stop.is_set():
            manager.result()  # why it ended: LeaderElectionLost or a failure
        log.info("controller-manager stopped")


def main(kubeconfig: str | None, server: str | None, controllers: str, leader_elect: bool) -> None:
    """Entry point of `mkp controller-manager` (blocks until stopped)."""
    import uvloop

    logging.basicConfig(level=os.environ.get("MKP_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        names = select_controllers(controllers)
        client = make_client(kubeconfig, server)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        sys.exit(1)
    try:
        uvloop.run(serve(client, names, leader_elect))
    except LeaderElectionLost as exc:
        log.error("%s; exiting", exc)
        sys.exit(1)
