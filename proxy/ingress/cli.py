"""`mkp ingress`: run the ingress controller in the foreground.

    mkp ingress --kubeconfig K [--address 127.0.0.1] [--http-port 80] [--https-port 443]
                [--ingress-class mkp] [--publish-address 127.0.0.1]
                [--metrics-bind-address 127.0.0.1:10254] [--no-update-status-on-shutdown]

Ports default to 80/443 as root and 8080/8443 otherwise. `main` is the same thing for
Python callers; `run_ingress` is the coroutine underneath, for tests and for running the
controller inside another process's event loop.
"""

from __future__ import annotations

import logging
import sys

import click

from minikube_py.client import ApiClient, client_for, run_until_signalled, setup_process
from proxy.ingress.classes import CONTROLLER_CLASS
from proxy.ingress.controller import IngressController, IngressOptions, default_ports

log = logging.getLogger("proxy.ingress")

FIELD_MANAGER = "mkp-ingress-controller"
USER_AGENT = "mkp-ingress-controller/minikube_py"


async def run_ingress(client: ApiClient, options: IngressOptions) -> None:
    """Run one controller until cancelled."""
    await IngressController(client, options).run()


def main(kubeconfig: str | None, server: str | None, options: IngressOptions) -> None:
    """Entry point of `mkp ingress` (blocks until SIGTERM/SIGINT; exit 1 on a setup error)."""
    import uvloop

    setup_process()
    try:
        client = client_for(kubeconfig, server, field_manager=FIELD_MANAGER, user_agent=USER_AGENT)
    except (ValueError, OSError) as exc:
        log.error("%s", exc)
        sys.exit(1)
    try:
        uvloop.run(run_until_signalled(client, lambda: run_ingress(client, options), "ingress controller"))
    except (OSError, ValueError) as exc:  # a port in use, a foreign IngressClass, a bad address
        log.error("ingress controller: %s", exc)
        sys.exit(1)


@click.command("ingress")
@click.option("--kubeconfig", default=None, help="kubeconfig of the cluster to serve.")
@click.option("--master", "--server", "server", default=None, help="API server URL; overrides the kubeconfig's.")
@click.option("--address", default="127.0.0.1", show_default=True, help="Address the HTTP and HTTPS listeners bind.")
@click.option("--http-port", type=click.IntRange(0, 65535), default=None,
              help="HTTP port (default 80 as root, else 8080; 0 picks a free one).")
@click.option("--https-port", type=click.IntRange(0, 65535), default=None,
              help="HTTPS port (default 443 as root, else 8443; 0 picks a free one).")
@click.option("--ingress-class", default="mkp", show_default=True,
              help="The IngressClass served (created as the default class if missing).")
@click.option("--controller-class", default=CONTROLLER_CLASS, show_default=True,
              help="spec.controller of the IngressClasses served.")
@click.option("--publish-address", default=None,
              help="Address written to status.loadBalancer.ingress (default: --address).")
@click.option("--metrics-bind-address", default="127.0.0.1:10254", show_default=True,
              help="host:port of /metrics and /healthz ('' for none).")
@click.option("--update-status-on-shutdown/--no-update-status-on-shutdown", default=True, show_default=True,
              help="Take the address out of the served Ingresses' status when stopping.")
def ingress_command(kubeconfig: str | None, server: str | None, address: str, http_port: int | None,
                    https_port: int | None, ingress_class: str, controller_class: str, publish_address: str | None,
                    metrics_bind_address: str, update_status_on_shutdown: bool) -> None:
    """Run the ingress controller (IngressClass mkp) in the foreground."""
    if not kubeconfig and not server:
        raise click.UsageError("give --kubeconfig PATH or --master URL")
    http_default, https_default = default_ports()
    options = IngressOptions(address=address, http_port=http_default if http_port is None else http_port,
                             https_port=https_default if https_port is None else https_port,
                             ingress_class=ingress_class, controller_class=controller_class,
                             publish_address=publish_address, metrics_bind_address=metrics_bind_address,
                             update_status_on_shutdown=update_status_on_shutdown)
    main(kubeconfig, server, options)


if __name__ == "__main__":
    ingress_command()
