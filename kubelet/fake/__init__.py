"""Fake nodes, kwok-style: Nodes that register, heartbeat and run pods by status alone.

A fake node is a kubelet with nothing underneath. It registers a Node with a real
kubelet's labels, capacity, nodeInfo and conditions, renews its Lease in
kube-node-lease, reports status, and moves the pods bound to it through
Pending -> Running (-> Succeeded / Failed for pods that run to completion) by writing
pods/<name>/status, with the kubelet's events. No process, image or network is ever
involved: any image "runs", pod IPs are never contacted. That makes controllers and the
scheduler testable without a kubelet, and lets one process carry hundreds of nodes and
thousands of pods for scale tests.

Public API:
    run_fake_nodes(client, names=[...], capacity=..., clock=..., heartbeat=10.0, ...)
    FakeNodes(client, names, config=FakeNodeConfig(...), clock=...)  .run() .wait_ready()
    FakeNodeConfig, DEFAULT_CAPACITY, parse_capacity, node_names
    serve(...) / main(...)   process entry points (`python -m kubelet.fake --help`)
    FAKE_NODE_LABEL, RUN_SECONDS_ANNOTATION, EXIT_CODE_ANNOTATION

Modules: config (names, defaults, settings), ipam (pod CIDRs, node and pod IPs),
nodestatus / nodes (the Node, its status and Lease), containers / podstatus / pods
(what pods look like and the reconciler driving them), runner (wiring, entry points).
"""

from kubelet.fake.config import (
    DEFAULT_CAPACITY,
    EXIT_CODE_ANNOTATION,
    FAKE_NODE_LABEL,
    RUN_SECONDS_ANNOTATION,
    FakeNodeConfig,
    node_names,
    parse_capacity,
)
from kubelet.fake.runner import FakeNodes, main, run_fake_nodes, serve

__all__ = [
    "DEFAULT_CAPACITY", "EXIT_CODE_ANNOTATION", "FAKE_NODE_LABEL", "RUN_SECONDS_ANNOTATION", "FakeNodeConfig",
    "FakeNodes", "main", "node_names", "parse_capacity", "run_fake_nodes", "serve",
]
