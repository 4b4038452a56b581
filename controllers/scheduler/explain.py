"""Plain-text rendering of a ScheduleResult, for `mkp explain schedule POD`.

Kubernetes only says where a pod went, or the counted reasons why it went nowhere. This
prints the whole cycle: what PreFilter decided, every node's filter verdicts (the first
failure decides, later ones are marked as not counted), and for feasible nodes each
score plugin's raw score, normalized score and weight, best node first.
"""

from __future__ import annotations

from controllers.scheduler.framework import NodeResult, ScheduleResult, Status


def _status(status: Status) -> str:
    text = status.code.value
    return f"{text}: {status.message()}" if status.reasons else text


def _pod_name(result: ScheduleResult) -> str:
    meta = result.pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _headline(result: ScheduleResult) -> str:
    evaluated = sum(1 for n in result.nodes.values() if n.filters)
    counts = f"{evaluated} of {result.num_all_nodes} nodes filtered, {result.feasible_nodes} feasible"
    if result.scheduled:
        return f"Pod {_pod_name(result)}: scheduled to {result.suggested_host} ({counts})"
    return f"Pod {_pod_name(result)}: not scheduled ({counts})\n  {result.message()}"


def _node_lines(node: NodeResult) -> list[str]:
    if node.status is None:
        return [f"  {node.name}: not evaluated (enough feasible nodes were found first)"]
    if node.status.is_success():
        head = f"  {node.name}: feasible" + (f", total score {node.total_score}" if node.total_score is not None else "")
    elif not node.filters:
        head = f"  {node.name}: not filtered ({_status(node.status)})"
    else:
        head = f"  {node.name}: rejected by {node.status.plugin} ({_status(node.status)})"
    lines = [head]
    for plugin, status in node.filters:
        if not status.is_success() and plugin != node.status.plugin:
            lines.append(f"      also {plugin}: {_status(status)} (not counted)")
    for s in node.scores:
        lines.append(f"      {s.plugin}: raw {s.raw}, normalized {s.normalized} x weight {s.weight} = {s.weighted}")
    return lines


def format_explanation(result: ScheduleResult) -> str:
    """A human-readable account of one scheduling cycle."""
    lines = [_headline(result)]
    decided = [f"{name} {_status(status)}" for name, status in result.pre_filter if not status.is_success()]
    if decided:
        lines.append("  PreFilter: " + "; ".join(decided))
    nodes = sorted(result.nodes.values(), key=lambda n: (n.total_score is None, -(n.total_score or 0), n.name))
    for node in nodes:
        lines.extend(_node_lines(node))
    return "\n".join(lines)
