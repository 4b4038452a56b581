"""The scheduler's own cost: scheduling cycles over N nodes, without HTTP.

Builds a SchedulerCache as the informers would (N nodes shaped like fake nodes, a
ReplicaSet owning the pods, so PodTopologySpread's default constraints apply as for a
Deployment), then runs the default framework on P pods of that ReplicaSet, assuming
each on its chosen node as the scheduling loop does. Reports pods/s and the time per
cycle. `--profile` prints the top of a cProfile run instead.

    python bench/scheduler_bench.py                        # 2,000 pods on 500 nodes
    python bench/scheduler_bench.py --pods 5000 --nodes 500 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controllers.scheduler.cache import SchedulerCache  # noqa: E402
from controllers.scheduler.plugins import default_framework  # noqa: E402

Obj = dict[str, Any]


def node(name: str) -> Obj:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "mkp.dev/fake-node": "true"}
    allocatable = {"cpu": "8", "memory": "33451520Ki", "ephemeral-storage": "96636764160",
                   "hugepages-1Gi": "0", "hugepages-2Mi": "0", "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {}, "status": {"allocatable": allocatable, "capacity": allocatable}}


def replica_set() -> Obj:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "scale-abc", "namespace": "default", "uid": "rs-uid"},
            "spec": {"selector": {"matchLabels": {"app": "scale", "pod-template-hash": "abc"}}}}


def pod(i: int) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"scale-abc-{i:05d}", "namespace": "default", "uid": f"uid-{i}",
                         "labels": {"app": "scale", "pod-template-hash": "abc"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "scale-abc",
                                              "uid": "rs-uid", "controller": True}]},
            "spec": {"schedulerName": "default-scheduler", "priority": 0,
                     "containers": [{"name": "c", "image": "nginx:1.27",
                                     "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}],
                     "tolerations": [
                         {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                          "tolerationSeconds": 300},
                         {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                          "tolerationSeconds": 300}]},
            "status": {"phase": "Pending"}}


def run(pods: int, nodes: int) -> dict[str, Any]:
    cache = SchedulerCache()
    for n in range(nodes):
        cache.add_node(node(f"node-{n:04d}"))
    cache.set_object("replica_sets", replica_set())
    fw = default_framework(rng=random.Random(1))
    placed: dict[str, int] = {}
    unschedulable = 0
    began = time.perf_counter()
    for i in range(pods):
        p = pod(i)
        result = fw.schedule(p, cache.snapshot())
        if not result.suggested_host:
            unschedulable += 1   # the nodes are full (110 pods each)
            continue
        cache.assume_pod(p, result.suggested_host)
        placed[result.suggested_host] = placed.get(result.suggested_host, 0) + 1
    took = time.perf_counter() - began
    return {"pods": pods, "nodes": nodes, "seconds": round(took, 2), "pods_per_s": round(pods / took, 1),
            "ms_per_cycle": round(took * 1000 / pods, 3), "nodes_used": len(placed),
            "max_pods_on_a_node": max(placed.values(), default=0), "unschedulable": unschedulable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="print the top 30 functions by own time")
    args = parser.parse_args()
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        result = run(args.pods, args.nodes)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    else:
        result = run(args.pods, args.nodes)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
