"""One scheduling cycle (schedule_one.go's schedulePod), recorded for explanation.

Kept apart from `framework.py` so the framework module stays the vocabulary (statuses,
protocols, extension points) and this one the algorithm: find feasible nodes, score
them, pick one. Two Kubernetes details matter for fidelity:
- Only enough feasible nodes are searched: all nodes below 100, otherwise an adaptive
  percentage (50% minus 1% per 125 nodes, at least 5%, at least 100 nodes), starting
  where the previous cycle stopped, so every node gets its turn.
- Ties between the best totals are broken uniformly at random (the framework's RNG).

Speed: with 500 nodes a cycle filters about 230 of them and scores those, so the
per-node path is kept short: the filters to run are listed once per cycle, a passing
filter returns the shared SUCCESS (no Status is built), and what happened per node is
recorded compactly in `ScheduleResult.record`, expanded only for an explanation.
"""

from __future__ import annotations

from controllers.scheduler.framework import (
    MAX_NODE_SCORE,
    MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND,
    MIN_FEASIBLE_NODES_TO_FIND,
    NO_NODES_AVAILABLE,
    SUCCESS,
    Code,
    CycleState,
    Framework,
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
    result.record.node_names = [info.name for info in snapshot.node_infos]
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
        result.record.unfiltered = dict.fromkeys(result.record.node_names, status)
        _post_filter(fw, state, pod, result)
        return None
    names = outcome.result.node_names
    if names is None:
        return state.snapshot.node_infos
    absent = Status.unresolvable(f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(outcome.narrowing_plugins))}]")
    diagnosis.absent_nodes_status = absent
    result.record.unfiltered = {name: absent for name in result.record.node_names if name not in names}
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
    record = result.record
    filters = [(p.name, p.filter) for p in fw.filter_plugins if p.name not in state.skip_filter_plugins]
    record.filter_names = tuple(name for name, _ in filters)
    diagnosis = result.diagnosis
    feasible: list[NodeInfo] = []
    processed = 0
    count = len(nodes)
    for i in range(count):
        if len(feasible) >= wanted:
            break
        info = nodes[(start + i) % count]
        processed += 1
        if explain:
            status, ran = fw.run_filters(state, pod, info, run_all=True)
            record.filtered[info.name] = (status, ran)
        else:
            status, ran_count = SUCCESS, 0
            for name, run in filters:   # RunFilterPlugins, inlined: this is the hot loop
                ran_count += 1
                verdict = run(state, pod, info)
                if verdict is not SUCCESS and verdict.code is not Code.SUCCESS:
                    status = verdict.with_plugin(name)
                    break
            record.filtered[info.name] = (status, ran_count)
        if status is SUCCESS:
            feasible.append(info)
        elif status.code is Code.ERROR:
            result.error = Status.error(f'running "{status.plugin}" filter plugin: {status.message()}')
            break
        else:
            diagnosis.node_to_status[info.name] = status
            diagnosis.unschedulable_plugins.add(status.plugin)
    if not explain:
        fw.next_start_node_index = (start + processed) % len(state.snapshot.node_infos)
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
    totals = dict.fromkeys((info.name for info in feasible), 0)
    if fw.score_plugins:
        for plugin in fw.pre_score_plugins:
            status = plugin.pre_score(state, pod, feasible)
            if status.is_skip():
                state.skip_score_plugins.add(plugin.name)
            elif not status.is_success():
                result.error = Status.error(f'running PreScore plugin "{plugin.name}": {status.message()}')
                return
        for plugin in fw.score_plugins:
            if plugin.name not in state.skip_score_plugins and not _score(fw, plugin, state, pod, feasible,
                                                                          result, totals):
                return
    else:
        totals = dict.fromkeys(totals, 1)
    result.record.totals = totals
    best = max(totals.values())
    result.suggested_host = fw.rng.choice([name for name, total in totals.items() if total == best])


def _score(fw: Framework, plugin: ScorePlugin, state: CycleState, pod: Pod, feasible: list[NodeInfo],
           result: ScheduleResult, totals: dict[str, int]) -> bool:
    """One plugin's Score over all feasible nodes, then NormalizeScore, added to `totals`
    with the plugin's weight; False on error."""
    batch = getattr(plugin, "score_nodes", None)   # a plugin may score all nodes in one call
    if batch is not None:
        raw = dict(zip((info.name for info in feasible), batch(state, pod, feasible), strict=True))
    else:
        score = plugin.score
        raw = {info.name: score(state, pod, info) for info in feasible}
    normalized = dict(raw)
    if plugin.name in fw.normalizing_plugins:
        plugin.normalize_score(state, pod, normalized)  # type: ignore[attr-defined]
    if normalized and not (0 <= min(normalized.values()) and max(normalized.values()) <= MAX_NODE_SCORE):
        bad = next(s for s in normalized.values() if not 0 <= s <= MAX_NODE_SCORE)
        result.error = Status.error(
            f'plugin "{plugin.name}" returns an invalid score {bad}, it should in the range '
            f"of [0, {MAX_NODE_SCORE}] after normalizing")
        return False
    weight = fw.weight(plugin.name)
    result.record.scores.append((plugin.name, raw, normalized, weight))
    for name, value in normalized.items():
        totals[name] += value * weight
    return True
