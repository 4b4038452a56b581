"""The controller-manager process (`mkp controller-manager`): client, event loop, signals.

`main` is synchronous so the CLI can call it directly. It connects as
kube-controller-manager (field manager and user agent), runs `run_controller_manager` on
uvloop and stops cleanly on SIGTERM or SIGINT: controllers stop, pending Events are
flushed, the Lease is released. Exit status 1 when leadership was lost (a supervisor
restarts it, as with kube-controller-manager) or the configuration is unusable.
"""

from __future__ import annotations

import logging
import sys

from controllers.manager.registry import select_controllers
from controllers.manager.run import FIELD_MANAGER, LeaderElectionLost, run_controller_manager
from minikube_py.client import ApiClient, client_for, run_until_signalled, setup_process

log = logging.getLogger("controllers.manager")

USER_AGENT = "kube-controller-manager/minikube_py"


def make_client(kubeconfig: str | None, server: str | None) -> ApiClient:
    """A client as kube-controller-manager; `server` overrides the kubeconfig's (--master)."""
    return client_for(kubeconfig, server, field_manager=FIELD_MANAGER, user_agent=USER_AGENT)


async def serve(client: ApiClient, controllers: list[str], leader_elect: bool,
                options: dict[str, object] | None = None) -> None:
    """Run until SIGTERM/SIGINT (then stop cleanly) or until the manager ends on its own."""
    await run_until_signalled(
        client, lambda: run_controller_manager(client, controllers=controllers, leader_elect=leader_elect,
                                               options=options),
        "controller-manager")


def main(kubeconfig: str | None, server: str | None, controllers: str, leader_elect: bool,
         options: dict[str, object] | None = None) -> None:
    """Entry point of `mkp controller-manager` (blocks until stopped); `options` are the
    other flags by name (node_monitor_grace_period=50.0, ...), see ControllerContext."""
    import uvloop

    setup_process()
    try:
        names = select_controllers(controllers)
        client = make_client(kubeconfig, server)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        sys.exit(1)
    try:
        uvloop.run(serve(client, names, leader_elect, options))
    except LeaderElectionLost as exc:
        log.error("%s; exiting", exc)
        sys.exit(1)
