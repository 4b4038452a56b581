"""One probe of one container, run periodically: the kubelet's probe worker.

Semantics (pkg/kubelet/prober/worker.go), which users tune their probes against:

- The first run happens as soon as the worker starts, except right after the kubelet
  itself started (within one period): then each worker first waits a random part of its
  period, so a restarted kubelet does not probe every container at once.
- Then one run per `periodSeconds` tick; a run that overlaps a tick makes the next run
  start at once (Go's ticker keeps one tick), later ticks are dropped. A readiness
  worker can also be triggered early (the kubelet does so while a container is not
  ready and its status is computed).
- A run is skipped until `initialDelaySeconds` have passed since the container started
  (whole seconds, truncated), and liveness/readiness runs are skipped until the startup
  probe (if any) has succeeded; startup runs stop once it has.
- A run that errored is thrown away. Otherwise the result must repeat
  `failureThreshold` / `successThreshold` times in a row before it becomes the
  container's result. After a liveness or startup failure the worker holds (no more
  runs) until the container is replaced; the pod worker restarts it.
- When the pod is being deleted, liveness and startup report success and stop, so
  a terminating container is not restarted.

Timers use the injected Clock; a run's own timeout bounds real I/O in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kubelet.probes.prober import Prober, Target
from kubelet.probes.spec import FAILURE, LIVENESS, STARTUP, SUCCESS, ProbeSpec
from minikube_py.client.clock import Clock

log = logging.getLogger("kubelet.probes")


class ProbeWorker:
    """Runs one ProbeSpec against one container until stopped."""

    def __init__(self, *, spec: ProbeSpec, target: Target, started_at: datetime, prober: Prober,
                 clock: Clock, jitter: bool, is_started: Callable[[], bool],
                 set_result: Callable[[str], None], count: Callable[[str], None]) -> None:
        self.spec = spec
        self.target = target
        self.started_at = started_at
        self.prober = prober
        self.clock = clock
        self.jitter = jitter
        self.is_started = is_started
        self.set_result = set_result
        self.count = count
        self.on_hold = False
        self.last_result: str | None = None
        self.result_run = 0
        self._trigger = asyncio.Event()
        self._next_tick = 0.0
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        name = f"probe {self.spec.kind} {self.target.container.get('name')} {self.target.container_id[-12:]}"
        self.task = asyncio.get_running_loop().create_task(self.run(), name=name)

    def trigger(self) -> None:
        """Run the next probe now rather than at the next tick (non-blocking, coalesced)."""
        self._trigger.set()

    async def run(self) -> None:
        period = self.spec.period
        if self.jitter:
            await self.clock.sleep(random.random() * period)
        self._next_tick = self.clock.monotonic() + period
        while await self.do_probe():
            await self._wait()

    async def _wait(self) -> None:
        """Until the next tick or a trigger, whichever comes first."""
        period = self.spec.period
        now = self.clock.monotonic()
        if now >= self._next_tick:  # a tick fired during the run: go now, drop the rest
            self._next_tick += (math.floor((now - self._next_tick) / period) + 1) * period
            return
        if self._trigger.is_set():
            self._trigger.clear()
            return
        tick = asyncio.ensure_future(self.clock.sleep(self._next_tick - now))
        triggered = asyncio.ensure_future(self._trigger.wait())
        try:
            done, _ = await asyncio.wait({tick, triggered}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (tick, triggered):
                waiter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        if tick in done:
            self._next_tick += period
        if triggered in done:
            self._trigger.clear()

    async def do_probe(self) -> bool:
        """One round; False stops the worker."""
        try:
            return await self._round()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - as the kubelet's HandleCrash: log, keep probing
            log.exception("probe worker %s for %s crashed", self.spec.kind, self.target.container_id)
            return True

    async def _round(self) -> bool:
        if self.on_hold:
            return True
        meta: dict[str, Any] = self.target.pod.get("metadata") or {}
        if meta.get("deletionTimestamp") and self.spec.kind in (LIVENESS, STARTUP):
            self.set_result(SUCCESS)  # a quiet shutdown: never restart a terminating container
            return False
        if int((self.clock.now() - self.started_at).total_seconds()) < self.spec.initial_delay:
            return True
        if self.is_started() == (self.spec.kind == STARTUP):
            return True  # startup probes stop once started; the others wait for it
        verdict = await self.prober.probe(self.spec, self.target)
        if verdict.errored:
            return True
        self.count(verdict.result)
        if verdict.result == self.last_result:
            self.result_run += 1
        else:
            self.last_result, self.result_run = verdict.result, 1
        threshold = self.spec.failure_threshold if verdict.result == FAILURE else self.spec.success_threshold
        if self.result_run < threshold:
            return True
        self.set_result(verdict.result)
        if verdict.result == FAILURE and self.spec.kind in (LIVENESS, STARTUP):
            # The container will be restarted: hold until it is replaced, and count afresh.
            self.on_hold, self.result_run = True, 0
        return True
