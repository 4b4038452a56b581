"""One scheduling cycle (schedule_one.go's schedulePod), recorded for explanation.

Kept apart from `framework.py` so the framework module stays the vocabulary (statuses,
protocols, extension points) and this one the algorithm: find feasible nodes, score
them, pick one. Two Kubernetes details matter for fidelity:
- Only enough feasible nodes are searched: all nodes below 100, otherwise an adaptive
  percentage (50% minus 1% per 125 nodes, at least 5%, at least 100 nodes), starting
  where the previous cycle stopped, so every node gets its turn.
- Ties between the best totals are broken uniformly at random (the framework's RNG).
"""

from __future__ import annotations

from controllers.scheduler.framework import (
    MAX_NODE_SCORE,
    MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND,
    MIN_FEASIBLE_NODES_TO_FIND,
    NO_NODES_AVAILABLE,
    Code,
    CycleState,
    Framework,
    NodeResult,
    NormalizeScorePlugin,
    PluginScore,
    Pod,
    ScheduleResult,
    ScorePlugin,
    Status,
)
from controllers.scheduler.nodeinfo import NodeInfo, Snapshot


def schedule(fw: Framework, pod: Pod, snapshot: Snapshot, *, explain: bool = False) -> ScheduleResult:
    """Framework.schedule's body; see the framework module docstring."""
    result = ScheduleResult(pod=pod, num_all_nodes=len(snapshot.node_infos))
    if not snapshot.node_infos:
        result.error = Status.unresolvable(NO_NODES_AVAILABLE)
        return result
    state = result.state = CycleState(snapshot)
    nodes = _pre_filter(fw, state, pod, result)
    if nodes is None:
        return result
    feasible = _find_feasible(fw, state, pod, nodes, result, explain=explain)
    if result.error is not None:
        return result
    result.feasible_nodes = len(feasible)
    result.evaluated_nodes = len(feasible) + len(result.diagnosis.node_to_status)
    if not feasible:
        _post_filter(fw, state, pod, result)
    elif len(feasible) == 1 and not explain:
        result.suggested_host = feasible[0].name
    else:
        _prioritize(fw, state, pod, feasible, result)
    return result


def _pre_filter(fw: Framework, state: CycleState, pod: Pod, result: ScheduleResult) -> list[NodeInfo] | None:
    """Run PreFilter; the nodes to filter, or None when the cycle already ended."""
    outcome = fw.run_pre_filter(state, pod)
    result.pre_filter = outcome.record
    diagnosis = result.diagnosis
    diagnosis.unschedulable_plugins.update(outcome.narrowing_plugins)
    status = outcome.status
    if not status.is_success():
        if not status.is_rejected():
            result.error = Status.error(f'running PreFilter plugin "{status.plugin}": {status.message()}')
            return None
        diagnosis.absent_nodes_status = status
        diagnosis.pre_filter_msg = status.message()
        diagnosis.unschedulable_plugins.add(status.plugin)
        for info in state.snapshot.node_infos:
            result.nodes[info.name] = NodeResult(info.name, status)
        _post_filter(fw, state, pod, result)
        return None
    names = outcome.result.node_names
    if names is None:
        return state.snapshot.node_infos
    absent = Status.unresolvable(f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(outcome.narrowing_plugins))}]")
    diagnosis.absent_nodes_status = absent
    for info in state.snapshot.node_infos:
        if info.name not in names:
            result.nodes[info.name] = NodeResult(info.name, absent)
    return [info for info in state.snapshot.node_infos if info.name in names]


def num_feasible_nodes_to_find(percentage: int, num_all_nodes: int) -> int:
    """numFeasibleNodesToFind: how many feasible nodes end the search."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    if percentage == 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


def _find_feasible(fw: Framework, state: CycleState, pod: Pod, nodes: list[NodeInfo],
                   result: ScheduleResult, *, explain: bool) -> list[NodeInfo]:
    """findNodesThatPassFilters, sequentially, from where the last cycle stopped."""
    wanted = len(nodes) if explain else num_feasible_nodes_to_find(fw.percentage_of_nodes_to_score, len(nodes))
    if not fw.score_plugins and not explain:
        wanted = 1
    start = 0 if explain else fw.next_start_node_index
    feasible: list[NodeInfo] = []
    processed = 0
    for i in range(len(nodes)):
        if len(feasible) >= wanted:
            break
        info = nodes[(start + i) % len(nodes)]
        status, record = fw.run_filters(state, pod, info, run_all=explain)
        result.nodes[info.name] = NodeResult(info.name, status, record)
        processed += 1
        if status.code is Code.ERROR:
            result.error = Status.error(f'running "{status.plugin}" filter plugin: {status.message()}')
            break
        if status.is_success():
            feasible.append(info)
        else:
            result.diagnosis.node_to_status[info.name] = status
            result.diagnosis.unschedulable_plugins.add(status.plugin)
    if not explain:
        fw.next_start_node_index = (start + processed) % len(state.snapshot.node_infos)
    for info in nodes:
        result.nodes.setdefault(info.name, NodeResult(info.name))   # enough were found before it
    return feasible


def _post_filter(fw: Framework, state: CycleState, pod: Pod, result: ScheduleResult) -> None:
    """Run PostFilter (preemption) when nothing fit; its message ends the FitError."""
    if not fw.post_filter_plugins:
        return
    found, status = fw.run_post_filter(state, pod, result.diagnosis)
    result.diagnosis.post_filter_msg = status.message()
    result.post_filter_result = found


def _prioritize(fw: Framework, state: CycleState, pod: Pod, feasible: list[NodeInfo],
                result: ScheduleResult) -> None:
    """prioritizeNodes + selectHost."""
    totals = {info.name: 0 for info in feasible}
    if fw.score_plugins:
        for plugin in fw.pre_score_plugins:
            status = plugin.pre_score(state, pod, feasible)
            if status.is_skip():
                state.skip_score_plugins.add(plugin.name)
            elif not status.is_success():
                result.error = Status.error(f'running PreScore plugin "{plugin.name}": {status.message()}')
                return
        for plugin in fw.score_plugins:
            if plugin.name not in state.skip_score_plugins and not _score(fw, plugin, state, pod, feasible, result):
                return
        for info in feasible:
            totals[info.name] = sum(s.weighted for s in result.nodes[info.name].scores)
    else:
        totals = dict.fromkeys(totals, 1)
    for name, total in totals.items():
        result.nodes[name].total_score = total
    best = max(totals.values())
    result.suggested_host = fw.rng.choice([name for name, total in totals.items() if total == best])


def _score(fw: Framework, plugin: ScorePlugin, state: CycleState, pod: Pod, feasible: list[NodeInfo],
           result: ScheduleResult) -> bool:
    """One plugin's Score over all feasible nodes, then NormalizeScore; False on error."""
    raw = {info.name: plugin.score(state, pod, info) for info in feasible}
    normalized = dict(raw)
    if isinstance(plugin, NormalizeScorePlugin):
        plugin.normalize_score(state, pod, normalized)
    weight = fw.weight(plugin.name)
    for name, score in normalized.items():
        if not 0 <= score <= MAX_NODE_SCORE:
            result.error = Status.error(
                f'plugin "{plugin.name}" returns an invalid score {score}, it should in the range '
                f"of [0, {MAX_NODE_SCORE}] after normalizing")
            return False
        result.nodes[name].scores.append(PluginScore(plugin.name, raw[name], score, weight))
    return True
