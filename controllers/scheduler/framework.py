"""The scheduling framework: statuses, cycle state, plugin protocols, and the runner.

One scheduling cycle, as pkg/scheduler/schedule_one.go runs it:
1. PreFilter plugins compute per-pod state once; one may narrow the candidate nodes
   (NodeAffinity on `metadata.name`) or reject the pod outright (VolumeBinding on a
   missing PVC). A plugin that has nothing to check returns Skip and its Filter is not run.
2. Filter plugins run per node, in profile order, stopping at the first failure: that
   plugin's reasons are what the FailedScheduling message counts for the node.
3. With no feasible node, PostFilter (DefaultPreemption) runs and its message is appended.
4. With exactly one feasible node it is chosen without scoring; otherwise PreScore and
   Score plugins run on the feasible nodes, NormalizeScore maps each plugin's raw scores
   to 0..100, each is multiplied by the plugin's weight and summed, and the node with
   the highest total wins, ties broken uniformly at random.

Beyond Kubernetes, every step is recorded in a `ScheduleResult` (each filter's status,
each score's raw and normalized value) so `mkp explain schedule POD` can say why a pod
went where it did. `explain=True` also runs the filters Kubernetes would have skipped
after the first failure and evaluates every node, without changing the outcome.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from controllers.scheduler.fit_error import failure_message
from controllers.scheduler.nodeinfo import NodeInfo, PodInfo, Snapshot

Pod = Mapping[str, Any]
MAX_NODE_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
NO_NODES_AVAILABLE = "no nodes available to schedule pods"

class Code(enum.Enum):
    """framework.Code, the outcome of one plugin call."""

    SUCCESS = "Success"
    ERROR = "Error"
    UNSCHEDULABLE = "Unschedulable"
    UNSCHEDULABLE_AND_UNRESOLVABLE = "UnschedulableAndUnresolvable"
    SKIP = "Skip"


@dataclass(frozen=True)
class Status:
    """framework.Status: a code, human-readable reasons, and the plugin that said so."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @classmethod
    def unschedulable(cls, *reasons: str) -> Status:
        return cls(Code.UNSCHEDULABLE, reasons)

    @classmethod
    def unresolvable(cls, *reasons: str) -> Status:
        return cls(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons)

    @classmethod
    def error(cls, message: str) -> Status:
        return cls(Code.ERROR, (message,))

    @classmethod
    def skip(cls) -> Status:
        return cls(Code.SKIP)

    def with_plugin(self, plugin: str) -> Status:
        return Status(self.code, self.reasons, plugin)

    def is_success(self) -> bool:
        return self.code is Code.SUCCESS

    def is_skip(self) -> bool:
        return self.code is Code.SKIP

    def is_rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def message(self) -> str:
        return ", ".join(self.reasons)


SUCCESS = Status()


class CycleState:
    """Data plugins share within one scheduling cycle, plus the snapshot they read."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self._data: dict[str, Any] = {}
        self.skip_filter_plugins: set[str] = set()
        self.skip_score_plugins: set[str] = set()
        self._pod_info: PodInfo | None = None

    def pod_info(self, pod: Pod) -> PodInfo:
        """The parsed pod (requests, ports, tolerations, affinity terms), computed once
        per cycle and shared by the plugins, as kube-scheduler's framework.PodInfo."""
        info = self._pod_info
        if info is None or info.pod is not pod:
            info = self._pod_info = PodInfo(pod)
        return info

    def read(self, key: str) -> Any:
        """The value written under `key`; KeyError when PreFilter/PreScore did not run."""
        return self._data[key]

    def write(self, key: str, value: Any) -> None:
        self._data[key] = value

    def clone(self, snapshot: Snapshot | None = None) -> CycleState:
        copy = CycleState(snapshot or self.snapshot)
        copy._data = dict(self._data)
        copy.skip_filter_plugins = set(self.skip_filter_plugins)
        copy.skip_score_plugins = set(self.skip_score_plugins)
        copy._pod_info = self._pod_info
        return copy


@dataclass(frozen=True)
class PreFilterResult:
    """Nodes a PreFilter plugin allows; None means every node."""

    node_names: frozenset[str] | None = None

    def merge(self, other: PreFilterResult | None) -> PreFilterResult:
        if other is None or other.node_names is None:
            return self
        if self.node_names is None:
            return other
        return PreFilterResult(self.node_names & other.node_names)


@dataclass(frozen=True)
class ClusterEvent:
    """A change in the cluster that may make unschedulable pods schedulable.
    `resource`/`action` "*" match anything (framework.WildCard / framework.All)."""

    resource: str
    action: str

    def matches(self, incoming: ClusterEvent) -> bool:
        return (self.resource in ("*", incoming.resource) and self.action in ("*", incoming.action))


@runtime_checkable
class Plugin(Protocol):
    name: str


@runtime_checkable
class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: Pod) -> tuple[PreFilterResult | None, Status]: ...


@runtime_checkable
class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: Pod, node: NodeInfo) -> Status: ...


@runtime_checkable
class PostFilterPlugin(Plugin, Protocol):
    def post_filter(self, state: CycleState, pod: Pod, diagnosis: Diagnosis,
                    framework: Framework) -> tuple[PostFilterResult | None, Status]: ...


@runtime_checkable
class PreScorePlugin(Plugin, Protocol):
    def pre_score(self, state: CycleState, pod: Pod, nodes: list[NodeInfo]) -> Status: ...


@runtime_checkable
class ScorePlugin(Plugin, Protocol):
    def score(self, state: CycleState, pod: Pod, node: NodeInfo) -> int: ...


@runtime_checkable
class NormalizeScorePlugin(Plugin, Protocol):
    def normalize_score(self, state: CycleState, pod: Pod, scores: dict[str, int]) -> None: ...


@runtime_checkable
class EnqueueExtensions(Plugin, Protocol):
    events: tuple[ClusterEvent, ...]


@dataclass
class PreFilterOutcome:
    """What the PreFilter extension point decided, and each plugin's status."""

    result: PreFilterResult = field(default_factory=PreFilterResult)
    status: Status = SUCCESS
    record: list[tuple[str, Status]] = field(default_factory=list)
    narrowing_plugins: list[str] = field(default_factory=list)


@dataclass
class PostFilterResult:
    """What preemption found: nodes where evicting `victims` would let the pod fit."""

    candidates: dict[str, list[Pod]] = field(default_factory=dict)


@dataclass
class Diagnosis:
    """Why no node fit: per-node statuses, the status of nodes never filtered, messages."""

    node_to_status: dict[str, Status] = field(default_factory=dict)
    absent_nodes_status: Status = field(default_factory=lambda: Status.unresolvable())
    unschedulable_plugins: set[str] = field(default_factory=set)
    pre_filter_msg: str = ""
    post_filter_msg: str = ""

    def status_of(self, node: str) -> Status:
        return self.node_to_status.get(node, self.absent_nodes_status)


@dataclass
class PluginScore:
    """One score plugin's verdict on one node."""

    plugin: str
    raw: int
    normalized: int
    weight: int

    @property
    def weighted(self) -> int:
        return self.normalized * self.weight


@dataclass
class NodeResult:
    """Everything the cycle learned about one node; `status` None = never evaluated."""

    name: str
    status: Status | None = None
    filters: list[tuple[str, Status]] = field(default_factory=list)
    scores: list[PluginScore] = field(default_factory=list)
    total_score: int | None = None


@dataclass
class CycleRecord:
    """What a cycle did to each node, kept in the compact form the cycle produces it in
    and expanded into `NodeResult`s only when someone reads `ScheduleResult.nodes`.

    The scheduling loop never reads them, and building a NodeResult per node and a
    PluginScore per node and plugin cost more than the filters and scores themselves.
    - `unfiltered`: nodes given a status without being filtered (PreFilter decided);
    - `filtered`: node -> (decided status, filters run): an int when the run stopped at
      the first failure (the filters are `filter_names` up to that count, all but the
      last successful), or the full (plugin, status) list when every filter ran;
    - `scores`: (plugin, raw scores, normalized scores, weight) per Score plugin;
    - `totals`: the weighted sums of the scored nodes; `node_names`: every node."""

    node_names: list[str] = field(default_factory=list)
    unfiltered: dict[str, Status] = field(default_factory=dict)
    filter_names: tuple[str, ...] = ()
    filtered: dict[str, tuple[Status, int | list[tuple[str, Status]]]] = field(default_factory=dict)
    scores: list[tuple[str, dict[str, int], dict[str, int], int]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)

    def expand(self) -> dict[str, NodeResult]:
        nodes = {name: NodeResult(name, status) for name, status in self.unfiltered.items()}
        for name, (status, ran) in self.filtered.items():
            nodes[name] = NodeResult(name, status, self._filters(status, ran))
        for name in self.node_names:
            nodes.setdefault(name, NodeResult(name))   # enough were found before it
        for plugin, raw, normalized, weight in self.scores:
            for name, score in normalized.items():
                nodes[name].scores.append(PluginScore(plugin, raw[name], score, weight))
        for name, total in self.totals.items():
            nodes[name].total_score = total
        return nodes

    def _filters(self, status: Status, ran: int | list[tuple[str, Status]]) -> list[tuple[str, Status]]:
        if not isinstance(ran, int):
            return ran
        names = self.filter_names[:ran]
        record = [(name, SUCCESS.with_plugin(name)) for name in names]
        if record and not status.is_success():
            record[-1] = (names[-1], status)
        return record


@dataclass
class ScheduleResult:
    """The outcome of Framework.schedule, with the full explanation (`nodes`)."""

    pod: Pod
    num_all_nodes: int
    suggested_host: str | None = None
    evaluated_nodes: int = 0
    feasible_nodes: int = 0
    pre_filter: list[tuple[str, Status]] = field(default_factory=list)
    record: CycleRecord = field(default_factory=CycleRecord)
    diagnosis: Diagnosis = field(default_factory=Diagnosis)
    error: Status | None = None
    post_filter_result: PostFilterResult | None = None
    state: CycleState | None = None
    _nodes: dict[str, NodeResult] | None = field(default=None, repr=False)

    @property
    def nodes(self) -> dict[str, NodeResult]:
        """Everything the cycle learned per node (built from `record` on first use)."""
        if self._nodes is None:
            self._nodes = self.record.expand()
        return self._nodes

    @property
    def scheduled(self) -> bool:
        return self.suggested_host is not None

    def message(self, *, truncate: bool = False) -> str:
        """The PodScheduled condition message ('' on success); `truncate=True` gives the
        FailedScheduling event's note."""
        return failure_message(self, truncate=truncate)


def _plugins_of(plugins: Sequence[Plugin], kind: type) -> list[Any]:
    return [p for p in plugins if isinstance(p, kind)]


class Framework:
    """A scheduling profile: plugins in Kubernetes' order with their score weights."""

    def __init__(self, plugins: Sequence[Plugin], *, weights: Mapping[str, int] | None = None,
                 rng: random.Random | None = None, percentage_of_nodes_to_score: int = 0) -> None:
        self.plugins = list(plugins)
        self.weights = dict(weights or {})
        self.rng = rng or random.Random()
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.next_start_node_index = 0
        self.pre_filter_plugins: list[PreFilterPlugin] = _plugins_of(plugins, PreFilterPlugin)
        self.filter_plugins: list[FilterPlugin] = _plugins_of(plugins, FilterPlugin)
        self.post_filter_plugins: list[PostFilterPlugin] = _plugins_of(plugins, PostFilterPlugin)
        self.pre_score_plugins: list[PreScorePlugin] = _plugins_of(plugins, PreScorePlugin)
        self.score_plugins: list[ScorePlugin] = _plugins_of(plugins, ScorePlugin)
        self.normalizing_plugins: set[str] = {p.name for p in _plugins_of(plugins, NormalizeScorePlugin)}

    def weight(self, plugin: str) -> int:
        return self.weights.get(plugin, 1)

    def cluster_event_map(self) -> dict[ClusterEvent, set[str]]:
        """Which plugins' rejections each cluster event may resolve (EventsToRegister)."""
        result: dict[ClusterEvent, set[str]] = {}
        for plugin in _plugins_of(self.plugins, EnqueueExtensions):
            for event in plugin.events:
                result.setdefault(event, set()).add(plugin.name)
        return result

    def schedule(self, pod: Pod, snapshot: Snapshot, *, explain: bool = False) -> ScheduleResult:
        """Run one scheduling cycle for `pod` against `snapshot` (see module docstring)."""
        from controllers.scheduler import cycle  # cycle builds on this module
        return cycle.schedule(self, pod, snapshot, explain=explain)

    # --- extension points, also used by preemption's dry run -------------------------
    def run_pre_filter(self, state: CycleState, pod: Pod) -> PreFilterOutcome:
        """RunPreFilterPlugins: an Unschedulable status lets the others still run (so
        preemption sees all their state); UnschedulableAndUnresolvable or Error stops."""
        outcome = PreFilterOutcome()
        for plugin in self.pre_filter_plugins:
            narrowed, status = plugin.pre_filter(state, pod)
            outcome.record.append((plugin.name, status))
            if status.is_skip():
                state.skip_filter_plugins.add(plugin.name)
                continue
            if not status.is_success():
                outcome.status = status.with_plugin(plugin.name)
                if status.code is Code.UNSCHEDULABLE:
                    continue
                return outcome
            if narrowed is not None and narrowed.node_names is not None:
                outcome.narrowing_plugins.append(plugin.name)
            outcome.result = outcome.result.merge(narrowed)
            if outcome.result.node_names is not None and not outcome.result.node_names:
                outcome.status = _no_node_left(outcome.narrowing_plugins)
                return outcome
        return outcome

    def run_filters(self, state: CycleState, pod: Pod, node: NodeInfo, *,
                    run_all: bool = False) -> tuple[Status, list[tuple[str, Status]]]:
        """RunFilterPlugins: the first non-success status decides; with `run_all` the
        remaining filters still run, for the explanation only."""
        decided, record = SUCCESS, []
        for plugin in self.filter_plugins:
            if plugin.name in state.skip_filter_plugins:
                continue
            if decided is not SUCCESS and not run_all:
                break
            status = plugin.filter(state, pod, node).with_plugin(plugin.name)
            record.append((plugin.name, status))
            if decided is SUCCESS and status.code is not Code.SUCCESS:
                decided = status
        return decided, record

    def run_post_filter(self, state: CycleState, pod: Pod,
                        diagnosis: Diagnosis) -> tuple[PostFilterResult | None, Status]:
        """RunPostFilterPlugins: the first success wins; rejections' reasons are joined."""
        result, reasons, rejector = None, [], ""
        for plugin in self.post_filter_plugins:
            found, status = plugin.post_filter(state, pod, diagnosis, self)
            if status.is_success() or status.code in (Code.UNSCHEDULABLE_AND_UNRESOLVABLE, Code.ERROR):
                return found, status.with_plugin(plugin.name)
            result = found or result
            reasons.extend(status.reasons)
            rejector = rejector or plugin.name
        return result, Status(Code.UNSCHEDULABLE, tuple(reasons), rejector)


def _no_node_left(narrowing: list[str]) -> Status:
    if len(narrowing) == 1:
        return Status.unresolvable(f"node(s) didn't satisfy plugin {narrowing[0]}")
    return Status.unresolvable(f"node(s) didn't satisfy plugin(s) [{' '.join(narrowing)}] simultaneously")
