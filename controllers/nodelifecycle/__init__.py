"""Node lifecycle (pkg/controller/nodelifecycle) and taint-based eviction (pkg/controller/tainteviction).

    config.py         --node-monitor-grace-period, --node-startup-grace-period, ...
    health.py         pure: when a node last showed life; its conditions once it stops
    taints.py         pure: the taints node conditions imply; tolerations
    zones.py          zone disruption states, master disruption mode, NoExecute tainting rate
    controller.py     NodeLifecycleController: heartbeats -> conditions, taints, pods NotReady
    tainteviction.py  TaintEvictionController: NoExecute taints -> pods deleted
"""
