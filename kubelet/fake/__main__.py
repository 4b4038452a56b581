"""`python -m kubelet.fake`: run fake nodes from a shell, with the options proposed for
`mkp kubelet --fake` (the mkp CLI wires the same `main`)."""

from __future__ import annotations

import argparse
import sys

from kubelet.fake.config import FakeNodeConfig, node_names, parse_capacity
from kubelet.fake.runner import main


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kubelet.fake", description=__doc__)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--kubeconfig", help="kubeconfig of the cluster to join")
    target.add_argument("--server", help="API server URL (no credentials), e.g. http://127.0.0.1:6443")
    p.add_argument("--node", action="append", default=[], metavar="NAME", help="a fake node's name (repeatable)")
    p.add_argument("--nodes", type=int, default=0, metavar="N", help="N more nodes named PREFIX1..PREFIXN")
    p.add_argument("--node-prefix", default="fake-node-", metavar="PREFIX")
    p.add_argument("--capacity", type=parse_capacity, default={}, metavar="cpu=8,memory=32Gi,...",
                   help="per-node capacity, over the defaults cpu=8,memory=32Gi,ephemeral-storage=100Gi,pods=110")
    p.add_argument("--heartbeat", type=float, default=10.0, metavar="SECONDS", help="Lease renewal interval")
    p.add_argument("--node-status-report-frequency", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--run-seconds", type=float, default=1.0, metavar="SECONDS",
                   help="run time of pods that run to completion (annotation mkp.dev/fake-run-seconds)")
    p.add_argument("--no-events", action="store_true", help="record no Pulled/Created/Started/Killing events")
    return p


def run(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    names = [*args.node, *node_names(args.nodes, args.node_prefix)]
    if not names:
        sys.exit("give --node NAME or --nodes N")
    config = FakeNodeConfig(capacity=args.capacity, heartbeat=args.heartbeat,
                            status_report_frequency=args.node_status_report_frequency,
                            run_seconds=args.run_seconds, record_events=not args.no_events)
    main(names=names, kubeconfig=args.kubeconfig, server=args.server, config=config)


if __name__ == "__main__":
    run()
