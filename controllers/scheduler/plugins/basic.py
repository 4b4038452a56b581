"""NodeUnschedulable, NodeName and NodePorts: filters that look at one node only."""

from __future__ import annotations

from controllers.scheduler.framework import SUCCESS, CycleState, Pod, PreFilterResult, Status
from controllers.scheduler.matching import tolerations_tolerate
from controllers.scheduler.nodeinfo import NodeInfo, ports_conflict
from controllers.scheduler.plugins.helper import ASSIGNED_POD_DELETE, NODE_CHANGES

TAINT_NODE_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_REASON_NODE_NAME = "node(s) didn't match the requested node name"
ERR_REASON_NODE_PORTS = "node(s) didn't have free ports for the requested pod ports"


class NodeUnschedulable:
    """Rejects cordoned nodes (spec.unschedulable) unless the pod tolerates the
    node.kubernetes.io/unschedulable:NoSchedule taint, as DaemonSet pods do."""

    name = "NodeUnschedulable"
    events = NODE_CHANGES

    def filter(self, state: CycleState, pod: Pod, node: NodeInfo) -> Status:
        if not node.unschedulable:
            return SUCCESS
        taint = {"key": TAINT_NODE_UNSCHEDULABLE, "effect": "NoSchedule"}
        if tolerations_tolerate(state.pod_info(pod).tolerations, taint):
            return SUCCESS
        return Status.unresolvable(ERR_REASON_UNSCHEDULABLE)


class NodeName:
    """A pod that names its node (spec.nodeName) fits only that node."""

    name = "NodeName"
    events = NODE_CHANGES

    def filter(self, state: CycleState, pod: Pod, node: NodeInfo) -> Status:
        wanted = state.pod_info(pod).node_name
        if not wanted or wanted == node.name:
            return SUCCESS
        return Status.unresolvable(ERR_REASON_NODE_NAME)


class NodePorts:
    """Host ports the pod asks for must be free on the node (0.0.0.0 clashes with all)."""

    name = "NodePorts"
    events = (ASSIGNED_POD_DELETE, *NODE_CHANGES)
    state_key = "PreFilterNodePorts"

    def pre_filter(self, state: CycleState, pod: Pod) -> tuple[PreFilterResult | None, Status]:
        ports = state.pod_info(pod).host_ports
        if not ports:
            return None, Status.skip()
        state.write(self.state_key, ports)
        return None, SUCCESS

    def filter(self, state: CycleState, pod: Pod, node: NodeInfo) -> Status:
        try:
            ports = state.read(self.state_key)
        except KeyError:
            ports = state.pod_info(pod).host_ports
        for ip, protocol, port in ports:
            if ports_conflict(node.used_ports, ip, protocol, port):
                return Status.unschedulable(ERR_REASON_NODE_PORTS)
        return SUCCESS
