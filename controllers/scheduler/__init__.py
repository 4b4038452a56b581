"""The kube-scheduler's algorithm, as pure functions over plain JSON objects.

Nothing here talks to the API: a `Snapshot` of nodes and assigned pods (plus the PVCs,
PVs, StorageClasses, namespaces and workload objects some plugins read) goes in, and a
`ScheduleResult` comes out with the chosen node, the FailedScheduling message when there
is none, and a per-node explanation of every filter and score. The scheduler loop that
lists and watches, pops pods from `queue.SchedulingQueue`, binds through `pods/binding`
and records events is built on top of this, so the algorithm can be tested in
milliseconds and explained (`mkp explain schedule POD`) without a cluster.

Layout, following pkg/scheduler of Kubernetes 1.32:
- `framework.py`   Status, CycleState, plugin protocols, the Framework that runs them.
- `cycle.py`       one scheduling cycle: feasible nodes, scores, the chosen node.
- `nodeinfo.py`    NodeInfo, PodInfo and the Snapshot the plugins read.
- `resources.py`   pod requests exactly as the scheduler sums them.
- `matching.py`    label selectors, node selectors, tolerations.
- `plugins/`       the default plugins (filters, scores, preemption dry run).
- `fit_error.py`   the "0/N nodes are available: ..." message.
- `queue.py`       activeQ / backoffQ / unschedulable pods.
- `explain.py`     the text of `mkp explain schedule POD`.
- `cache.py`       the long-lived Snapshot kept current from informers, assumed pods.
- `loop.py`        the scheduling loop: queue -> cycle -> assume + bind, events, failures.
- `process.py`     `mkp scheduler` (leader election, signals) and `explain_pod`.

Typical use::

    fw = plugins.default_framework()
    result = fw.schedule(pod, Snapshot(nodes, pods, pvcs=..., replica_sets=...))
    result.suggested_host or result.message(truncate=True)   # FailedScheduling note
"""
