"""`mkp all-in-one` (what `mkp up --single-process` runs): every component on one event loop.

The API server listens as usual; the controller-manager, the scheduler and (with
`--fake-nodes N`) the fake nodes then run as tasks of the same process, each with its own
ApiClient talking HTTP to that port, with the same field managers and user agents as
their own processes. Nothing is shared in memory: the components see the cluster only
through the REST API, exactly as `mkp up` without `--single-process` runs them, so
behaviour does not depend on the mode (only start-up time and memory do).

Leader election is off here (one process cannot compete with itself); a component
whose task ends with an error is logged and restarted after a back-off (1 s doubling to
30 s), as a kubelet restarts a crashed static pod. SIGTERM/SIGINT stop everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from minikube_py.client import ApiClient, setup_process

log = logging.getLogger("minikube_py.allinone")

RESTART_BACKOFF_START = 1.0
RESTART_BACKOFF_MAX = 30.0

Work = Callable[[ApiClient], Coroutine[Any, Any, Any]]


def components(fake_nodes: int) -> dict[str, tuple[dict[str, str], Work]]:
    """name -> (client identity, work) of each in-process component."""
    from controllers.manager.process import USER_AGENT as CM_AGENT
    from controllers.manager.run import FIELD_MANAGER as CM_MANAGER
    from controllers.manager.run import run_controller_manager
    from controllers.scheduler.process import FIELD_MANAGER as SCHED_MANAGER
    from controllers.scheduler.process import USER_AGENT as SCHED_AGENT
    from controllers.scheduler.process import run_scheduler

    found: dict[str, tuple[dict[str, str], Work]] = {
        "controller-manager": ({"field_manager": CM_MANAGER, "user_agent": CM_AGENT},
                               lambda client: run_controller_manager(client, leader_elect=False)),
        "scheduler": ({"field_manager": SCHED_MANAGER, "user_agent": SCHED_AGENT},
                      lambda client: run_scheduler(client, leader_elect=False)),
    }
    if fake_nodes:
        from kubelet.fake.config import FIELD_MANAGER as NODE_MANAGER
        from kubelet.fake.config import FakeNodeConfig, node_names
        from kubelet.fake.runner import run_fake_nodes, user_agent

        names = node_names(fake_nodes)
        found["kubelet"] = ({"field_manager": NODE_MANAGER, "user_agent": user_agent(FakeNodeConfig())},
                            lambda client: run_fake_nodes(client, names=names))
    return found


async def supervise(name: str, server: str, identity: dict[str, str], work: Work) -> None:
    """Run one component until cancelled, restarting it after failures."""
    backoff = RESTART_BACKOFF_START
    while True:
        client = ApiClient(server, **identity)
        try:
            async with client:
                await work(client)
            log.warning("%s ended on its own; restarting in %.0fs", name, backoff)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; restarting in %.0fs", name, backoff)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, RESTART_BACKOFF_MAX)


async def serve_all(data_dir: Path, host: str, port: int, port_file: Path | None, service_cidr: str,
                    fake_nodes: int = 0) -> None:
    """The API server plus every other component, until SIGTERM/SIGINT."""
    from apiserver.server import publish_port, running_apiserver, wait_for_signal

    async with running_apiserver(data_dir, host, port, service_cidr) as bound:
        server = f"http://{host}:{bound}"
        tasks = [asyncio.create_task(supervise(name, server, identity, work), name=name)
                 for name, (identity, work) in components(fake_nodes).items()]
        log.info("all-in-one: API server on %s; running %s", server, ", ".join(t.get_name() for t in tasks))
        publish_port(port_file, bound)
        try:
            await wait_for_signal()
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)


def main(data_dir: str, host: str, port: int, port_file: str | None, service_cidr: str, fake_nodes: int) -> None:
    import uvloop

    setup_process()
    uvloop.run(serve_all(Path(data_dir), host, port, Path(port_file) if port_file else None, service_cidr,
                         fake_nodes))
