"""Envoy's outlier detection (passive health checking) for one cluster.

Consecutive-error detectors run inline: the router reports each upstream result
(`report_http_status`, `report_local_origin`) and the host is ejected the moment a
counter reaches its threshold, if the `enforcing_*` percentage says so (a random draw)
and `max_ejection_percent` allows it. Un-ejection happens only at the interval sweep
(`tick`, every `interval`, 10 s): a host ejected at `ejected_at` returns once
`min(base_ejection_time * multiplier, max(base_ejection_time, max_ejection_time))`
has passed, so it is out for 30 s, 60 s, 90 s ... on successive ejections (rounded up
to the next sweep). The multiplier grows by one per ejection (capped once the product
passes max_ejection_time) and shrinks by one at each sweep that finds the host healthy
not ejected (so at every sweep after its return), as Envoy's detector does.

max_ejection_percent (10 %): as in Envoy's code, a new ejection is allowed while the
share of hosts already ejected is below it; so one host can always be ejected ("at
least one host regardless of the value") and the last one allowed may overshoot (15
hosts at 10 %: two). The check comes before the enforcing draw (ejections_overflow).

Error classes, as Envoy's `split_external_local_origin_errors`:
- false (default): local-origin events are folded into HTTP codes (connect failure and
  reset -> 503, timeout -> 504) and count towards consecutive_5xx and, being gateway
  errors, consecutive_gateway_failure.
- true: local-origin events count only towards consecutive_local_origin_failure (a
  successful connect resets it); HTTP codes only towards the 5xx/gateway counters.

Istio's outlierDetection maps as: consecutive5xxErrors -> consecutive_5xx (0 disables:
istiod then sets enforcing_consecutive_5xx 0), consecutiveGatewayErrors ->
consecutive_gateway_failure with enforcing 100, interval, baseEjectionTime,
maxEjectionPercent; splitExternalLocalOriginErrors, consecutiveLocalOriginFailures
1:1; minHealthPercent -> the cluster's healthy_panic_threshold (see cluster.py).
Success-rate and failure-percentage detectors run at each sweep over the interval's
counts, as Envoy's: success rate ejects hosts below mean - success_rate_stdev_factor/1000
x stdev among hosts with >= success_rate_request_volume requests (needs
success_rate_minimum_hosts such hosts; enforcing_success_rate defaults to 100, so it is
on in plain Envoy configs, while istiod writes enforcing_success_rate 0); failure
percentage ejects hosts failing >= failure_percentage_threshold (enforcing default 0).
With split errors each has a local-origin twin over connect/timeout/reset events.

Events (ejected / unejected, with the detector's name) go to `on_event` and
`events`, so /clusters and the log can show them.
"""

from __future__ import annotations

import random as _random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from proxy.engine.cluster import Cluster, Host

GATEWAY_ERRORS = frozenset({502, 503, 504})


class LocalOrigin(Enum):
    """Envoy's Result values for errors seen by the proxy itself, not sent by the host."""

    CONNECT_FAILED = "connect_failed"
    CONNECT_SUCCESS = "connect_success"
    TIMEOUT = "timeout"
    RESET = "reset"


_LOCAL_AS_HTTP = {LocalOrigin.CONNECT_FAILED: 503, LocalOrigin.RESET: 503, LocalOrigin.TIMEOUT: 504}


@dataclass(frozen=True)
class OutlierDetection:
    """config.cluster.v3.OutlierDetection (consecutive detectors); times in seconds."""

    consecutive_5xx: int = 5
    interval: float = 10.0
    base_ejection_time: float = 30.0
    max_ejection_percent: int = 10
    enforcing_consecutive_5xx: int = 100
    consecutive_gateway_failure: int = 5
    enforcing_consecutive_gateway_failure: int = 0
    split_external_local_origin_errors: bool = False
    consecutive_local_origin_failure: int = 5
    enforcing_consecutive_local_origin_failure: int = 100
    max_ejection_time: float = 300.0
    enforcing_success_rate: int = 100
    success_rate_minimum_hosts: int = 5
    success_rate_request_volume: int = 100
    success_rate_stdev_factor: int = 1900
    enforcing_local_origin_success_rate: int = 100
    failure_percentage_threshold: int = 85
    enforcing_failure_percentage: int = 0
    enforcing_failure_percentage_local_origin: int = 0
    failure_percentage_minimum_hosts: int = 5
    failure_percentage_request_volume: int = 50

    def __post_init__(self) -> None:
        for name in ("interval", "base_ejection_time", "max_ejection_time"):
            if getattr(self, name) <= 0:
                raise ValueError(f"outlier_detection.{name}: must be > 0")
        for name in ("max_ejection_percent", "enforcing_consecutive_5xx", "enforcing_consecutive_gateway_failure",
                     "enforcing_consecutive_local_origin_failure", "enforcing_success_rate",
                     "enforcing_local_origin_success_rate", "failure_percentage_threshold",
                     "enforcing_failure_percentage", "enforcing_failure_percentage_local_origin"):
            if not 0 <= getattr(self, name) <= 100:
                raise ValueError(f"outlier_detection.{name}: {getattr(self, name)} is not in 0..100")
        for name in ("consecutive_5xx", "consecutive_gateway_failure", "consecutive_local_origin_failure"):
            if getattr(self, name) < 0:
                raise ValueError(f"outlier_detection.{name}: must be >= 0")

    @classmethod
    def istio(
        cls,
        *,
        consecutive_5xx_errors: int | None = None,
        consecutive_gateway_errors: int | None = None,
        interval: float | None = None,
        base_ejection_time: float | None = None,
        max_ejection_percent: int = 0,
        split_external_local_origin_errors: bool = False,
        consecutive_local_origin_failures: int | None = None,
    ) -> OutlierDetection:
        """A DestinationRule's outlierDetection as istiod writes it: success rate off
        (enforcing 0); a set error count gets enforcing 100 (0 disables); an unset
        count keeps Envoy's (5 x 5xx enforced, gateway not); a base ejection time above
        300 s raises max_ejection_time to it; maxEjectionPercent 0 keeps Envoy's 10.
        minHealthPercent goes to CommonLbConfig.healthy_panic_threshold instead."""
        kw: dict[str, object] = {"enforcing_success_rate": 0,
                                 "split_external_local_origin_errors": split_external_local_origin_errors}
        if consecutive_5xx_errors is not None:
            kw["consecutive_5xx"] = consecutive_5xx_errors
            kw["enforcing_consecutive_5xx"] = 100 if consecutive_5xx_errors > 0 else 0
        if consecutive_gateway_errors is not None:
            kw["consecutive_gateway_failure"] = consecutive_gateway_errors
            kw["enforcing_consecutive_gateway_failure"] = 100 if consecutive_gateway_errors > 0 else 0
        if interval is not None:
            kw["interval"] = interval
        if base_ejection_time is not None:
            kw["base_ejection_time"] = base_ejection_time
            if base_ejection_time > 300.0:
                kw["max_ejection_time"] = base_ejection_time
        if max_ejection_percent > 0:
            kw["max_ejection_percent"] = max_ejection_percent
        if consecutive_local_origin_failures is not None:
            kw["consecutive_local_origin_failure"] = consecutive_local_origin_failures
        return cls(**kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class OutlierEvent:
    time: float
    cluster: str
    host: str                      # "address:port"
    action: str                    # "eject" | "uneject"
    detector: str                  # Envoy's ejection type, lower case ("consecutive_5xx", "success_rate" ...); "" on uneject
    times_ejected: int
    ejection_seconds: float        # how long this ejection lasts at least (eject events)


class _Counters:
    """Consecutive runs, and this interval's request/failure counts for the success-rate
    detectors (external origin, and local origin when split)."""

    __slots__ = ("c5xx", "gateway", "local", "ext_total", "ext_fail", "loc_total", "loc_fail")

    def __init__(self) -> None:
        self.c5xx = self.gateway = self.local = 0
        self.ext_total = self.ext_fail = self.loc_total = self.loc_fail = 0


class OutlierDetector:
    """Outlier detection over a Cluster's hosts; `tick()` runs the due interval sweeps
    (the integrator calls it from a timer, e.g. every second or at `next_sweep`)."""

    def __init__(
        self,
        cluster: Cluster,
        config: OutlierDetection | None = None,
        *,
        clock: Callable[[], float],
        random: _random.Random | None = None,
        on_event: Callable[[OutlierEvent], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.config = config or OutlierDetection()
        self.clock = clock
        self.random = random or _random.Random()
        self.on_event = on_event
        self.events: deque[OutlierEvent] = deque(maxlen=256)
        self.next_sweep = clock() + self.config.interval
        self._counters: dict[int, _Counters] = {}
        self.stats = {
            "ejections_active": 0, "ejections_overflow": 0, "ejections_enforced_total": 0,
            "ejections_detected_consecutive_5xx": 0, "ejections_enforced_consecutive_5xx": 0,
            "ejections_detected_consecutive_gateway_failure": 0,
            "ejections_enforced_consecutive_gateway_failure": 0,
            "ejections_detected_consecutive_local_origin_failure": 0,
            "ejections_enforced_consecutive_local_origin_failure": 0,
            "ejections_detected_success_rate": 0, "ejections_enforced_success_rate": 0,
            "ejections_detected_local_origin_success_rate": 0, "ejections_enforced_local_origin_success_rate": 0,
            "ejections_detected_failure_percentage": 0, "ejections_enforced_failure_percentage": 0,
            "ejections_detected_failure_percentage_local_origin": 0,
            "ejections_enforced_failure_percentage_local_origin": 0,
        }

    def _c(self, host: Host) -> _Counters:
        c = self._counters.get(id(host))
        if c is None:
            c = self._counters[id(host)] = _Counters()
        return c

    # -- results in ----------------------------------------------------------------------

    def report_http_status(self, host: Host, status: int) -> None:
        """An upstream response's status code (from the host itself). The host's own
        rq_total/rq_error counters are the router's to keep, not ours."""
        c = self._c(host)
        c.ext_total += 1
        if status >= 500:
            c.ext_fail += 1
            self._count_5xx(host, c, status)
        else:
            c.c5xx = c.gateway = 0
            if not self.config.split_external_local_origin_errors:
                c.local = 0

    def report_local_origin(self, host: Host, event: LocalOrigin) -> None:
        """A connect failure/success, timeout or reset seen by the proxy."""
        c = self._c(host)
        if not self.config.split_external_local_origin_errors:
            if event is not LocalOrigin.CONNECT_SUCCESS:
                c.ext_total += 1
                c.ext_fail += 1
                self._count_5xx(host, c, _LOCAL_AS_HTTP[event])
            return
        c.loc_total += 1
        if event is LocalOrigin.CONNECT_SUCCESS:
            c.local = 0
            return
        c.loc_fail += 1
        c.local += 1
        cfg = self.config
        if cfg.consecutive_local_origin_failure and c.local >= cfg.consecutive_local_origin_failure:
            c.local = 0
            self._detected(host, "consecutive_local_origin_failure", cfg.enforcing_consecutive_local_origin_failure)

    def _count_5xx(self, host: Host, c: _Counters, status: int) -> None:
        cfg = self.config
        c.c5xx += 1
        if status in GATEWAY_ERRORS:
            c.gateway += 1
            if cfg.consecutive_gateway_failure and c.gateway >= cfg.consecutive_gateway_failure:
                c.gateway = 0
                if self._detected(host, "consecutive_gateway_failure", cfg.enforcing_consecutive_gateway_failure):
                    return
        else:
            c.gateway = 0
        if cfg.consecutive_5xx and c.c5xx >= cfg.consecutive_5xx:
            c.c5xx = 0
            self._detected(host, "consecutive_5xx", cfg.enforcing_consecutive_5xx)

    # -- ejection ------------------------------------------------------------------------

    def _detected(self, host: Host, detector: str, enforcing: int) -> bool:
        if host.ejected:
            return False
        self.stats[f"ejections_detected_{detector}"] += 1
        active = self.stats["ejections_active"]
        # Envoy's rule: eject while the share *already* ejected is below the maximum, so
        # one host can always go, and the last ejection may overshoot by one host.
        if 100.0 * active / len(self.cluster.hosts) >= self.config.max_ejection_percent:
            self.stats["ejections_overflow"] += 1
            return False
        if self.random.randrange(100) >= enforcing:
            return False
        self._eject(host, detector)
        return True

    def _eject(self, host: Host, detector: str) -> None:
        cfg = self.config
        now = self.clock()
        if host.ejection_multiplier * cfg.base_ejection_time < cfg.max_ejection_time + cfg.base_ejection_time:
            host.ejection_multiplier += 1
        host.ejected = True
        host.ejected_at = now
        host.times_ejected += 1
        self.stats["ejections_active"] += 1
        self.stats["ejections_enforced_total"] += 1
        self.stats[f"ejections_enforced_{detector}"] += 1
        self.cluster.changed()
        self._emit(now, host, "eject", detector, self._ejection_seconds(host))

    def _ejection_seconds(self, host: Host) -> float:
        cfg = self.config
        return min(cfg.base_ejection_time * host.ejection_multiplier, max(cfg.base_ejection_time, cfg.max_ejection_time))

    def _emit(self, now: float, host: Host, action: str, detector: str, seconds: float) -> None:
        event = OutlierEvent(now, self.cluster.name, f"{host.address}:{host.port}", action, detector,
                             host.times_ejected, seconds)
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    # -- the interval sweep --------------------------------------------------------------

    def tick(self) -> list[OutlierEvent]:
        """Run every sweep that is due by the clock; returns the un-ejection events."""
        out: list[OutlierEvent] = []
        while self.clock() >= self.next_sweep:
            out.extend(self._sweep(self.next_sweep))
            self.next_sweep += self.config.interval
        return out

    def _sweep(self, now: float) -> list[OutlierEvent]:
        cfg = self.config
        out: list[OutlierEvent] = []
        live = {id(h) for h in self.cluster.hosts}
        for key in [k for k in self._counters if k not in live]:
            del self._counters[key]  # endpoints removed by an update
        for host in self.cluster.hosts:
            if not host.ejected:
                if host.ejection_multiplier > 0:  # healthy through a whole interval
                    host.ejection_multiplier -= 1
                continue
            assert host.ejected_at is not None
            if now - host.ejected_at >= self._ejection_seconds(host):
                host.ejected = False
                host.last_unejected_at = now
                c = self._c(host)
                c.c5xx = c.gateway = 0  # so a few new errors do not re-eject at once
                self.stats["ejections_active"] -= 1
                self.cluster.changed()
                self._emit(now, host, "uneject", "", 0.0)
                out.append(self.events[-1])
        self._rate_detectors(external=True)
        if cfg.split_external_local_origin_errors:
            self._rate_detectors(external=False)
        for c in self._counters.values():  # a new interval's counts
            c.ext_total = c.ext_fail = c.loc_total = c.loc_fail = 0
        return out

    def _rate_detectors(self, *, external: bool) -> None:
        """Envoy's success-rate (mean - stdev_factor/1000 x stdev) and failure-percentage
        detectors over the last interval's counts of the hosts not ejected."""
        cfg = self.config
        hosts = self.cluster.hosts
        if len(hosts) < cfg.success_rate_minimum_hosts and len(hosts) < cfg.failure_percentage_minimum_hosts:
            return
        sr_hosts: list[tuple[Host, float]] = []
        fp_hosts: list[tuple[Host, float]] = []
        for h in hosts:
            c = self._counters.get(id(h))
            if h.ejected or c is None:
                continue
            total, fail = (c.ext_total, c.ext_fail) if external else (c.loc_total, c.loc_fail)
            if total == 0:
                continue
            rate = 100.0 * (total - fail) / total
            if total >= cfg.success_rate_request_volume:
                sr_hosts.append((h, rate))
            if total >= cfg.failure_percentage_request_volume:
                fp_hosts.append((h, rate))
        suffix = "" if external else "local_origin_"
        if sr_hosts and len(sr_hosts) >= cfg.success_rate_minimum_hosts:
            mean = sum(r for _, r in sr_hosts) / len(sr_hosts)
            stdev = (sum((r - mean) ** 2 for _, r in sr_hosts) / len(sr_hosts)) ** 0.5
            threshold = mean - cfg.success_rate_stdev_factor / 1000.0 * stdev
            enforcing = cfg.enforcing_success_rate if external else cfg.enforcing_local_origin_success_rate
            for h, r in sr_hosts:
                if r < threshold:
                    self._detected(h, f"{suffix}success_rate", enforcing)
        if fp_hosts and len(fp_hosts) >= cfg.failure_percentage_minimum_hosts:
            enforcing = cfg.enforcing_failure_percentage if external else cfg.enforcing_failure_percentage_local_origin
            name = "failure_percentage" if external else "failure_percentage_local_origin"
            for h, r in fp_hosts:
                if 100.0 - r >= cfg.failure_percentage_threshold:
                    self._detected(h, name, enforcing)

    def forget_removed(self) -> None:
        """Recount active ejections after a Cluster.update removed ejected hosts."""
        self.stats["ejections_active"] = sum(1 for h in self.cluster.hosts if h.ejected)
