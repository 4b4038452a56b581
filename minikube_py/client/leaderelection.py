"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection.

Replicas of a component (controller-manager, scheduler) each run a `LeaderElector` on
the same Lease; one holds it and works, the others wait to take over.

- Acquire: every `retry_period` (jittered), read the Lease. Take it if it is missing,
  has no holder, or its holder has not renewed for `lease_duration` seconds. "Not
  renewed" is measured on *our* clock from when we last saw the record change, never
  by comparing the holder's `renewTime` with our wall clock, so clock skew between
  hosts does not matter (client-go's observedTime).
- Renew: the leader rewrites `renewTime` every `retry_period`. If it cannot for
  `renew_deadline` seconds, it stops leading, before anyone else may take over
  (renew_deadline < lease_duration).
- Writes are compare-and-swap on the Lease's resourceVersion, so two candidates never
  both win: the loser gets 409 Conflict.
- On cancel, a leader releases the Lease (empty holder, 1 s duration) so a successor
  takes over at its next retry instead of after lease_duration.

Lease fields: holderIdentity, leaseDurationSeconds, acquireTime and renewTime as
MicroTime (RFC 3339 with microseconds), leaseTransitions (+1 on every change of holder).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import orjson

from minikube_py.client.clock import Clock, RealClock
from minikube_py.client.errors import ApiError
from minikube_py.client.resources import LEASES
from minikube_py.client.rest import ApiClient

log = logging.getLogger("minikube_py.client.leaderelection")

Obj = dict[str, Any]


def micro_time(when: datetime) -> str:
    """metav1.MicroTime: `2025-01-01T00:00:00.000000Z`."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    """hostname_uuid, like kube-controller-manager's."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


async def _call(fn: Callable[..., Any] | None, *args: Any) -> None:
    if fn is None:
        return
    try:
        result = fn(*args)
        if inspect.isawaitable(result):
            await result
    except Exception:  # noqa: BLE001 - a broken callback must not break the election
        log.exception("leader election callback %r failed", fn)


class LeaderElector:
    """One candidate for the Lease `namespace/name`."""

    def __init__(self, client: ApiClient, name: str, *, namespace: str = "kube-system",
                 identity: str | None = None,
                 on_started_leading: Callable[[], Awaitable[None]] | None = None,
                 on_stopped_leading: Callable[[], Any] | None = None,
                 on_new_leader: Callable[[str], Any] | None = None,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0,
                 jitter: float = 1.2, release_on_cancel: bool = True, clock: Clock | None = None) -> None:
        if not lease_duration > renew_deadline > retry_period * max(jitter, 1.0) and retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period * jitter, all positive")
        self.client = client
        self.name = name
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_new_leader = on_new_leader
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.jitter = jitter
        self.release_on_cancel = release_on_cancel
        self.clock = clock or RealClock()
        self._observed: Obj | None = None  # the Lease's spec as last read or written
        self._observed_raw = b""
        self._observed_at = 0.0  # our monotonic time when _observed last changed
        self._lease: Obj | None = None  # the Lease object (for its resourceVersion)
        self._reported_leader: str | None = None

    # -- observation ------------------------------------------------------------------

    @property
    def leader(self) -> str:
        """The holder we last observed ("" if none)."""
        return str((self._observed or {}).get("holderIdentity") or "")

    def is_leader(self) -> bool:
        return self.leader == self.identity

    def _lease_valid(self) -> bool:
        return self._observed_at + self.lease_duration > self.clock.monotonic()

    def _observe(self, lease: Obj) -> None:
        spec = lease.get("spec") or {}
        raw = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
        if raw != self._observed_raw:
            self._observed, self._observed_raw = dict(spec), raw
            self._observed_at = self.clock.monotonic()
        self._lease = lease

    # -- one attempt --------------------------------------------------------------------

    async def try_acquire_or_renew(self) -> bool:
        """One read-and-write: True if we hold the Lease afterwards. Failures to reach
        the server count as "not now", never as errors."""
        try:
            return await self._try_acquire_or_renew()
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.warning("leader election %s: %s: %s", self.name, type(exc).__name__, exc)
            return False

    async def _try_acquire_or_renew(self) -> bool:
        now = micro_time(self.clock.now())
        record: Obj = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                       "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        try:
            lease = await self.client.get(LEASES, self.name, self.namespace)
        except ApiError as exc:
            if not exc.is_not_found():
                log.warning("leader election %s: reading the lease: %s", self.name, exc)
                return False
            return await self._create(record)
        self._observe(lease)
        observed = self._observed or {}
        if observed.get("holderIdentity") and self._lease_valid() and not self.is_leader():
            return False
        if self.is_leader():
            record["acquireTime"] = observed.get("acquireTime") or now
            record["leaseTransitions"] = observed.get("leaseTransitions") or 0
        else:
            record["leaseTransitions"] = (observed.get("leaseTransitions") or 0) + 1
        return await self._write(record)

    async def _create(self, record: Obj) -> bool:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace}, "spec": record}
        try:
            self._observe(await self.client.create(LEASES, body))
        except ApiError as exc:
            log.info("leader election %s: creating the lease: %s", self.name, exc)
            return False
        return True

    async def _write(self, record: Obj) -> bool:
        assert self._lease is not None
        lease = dict(self._lease)
        lease["spec"] = record
        try:
            self._observe(await self.client.update(LEASES, lease))
        except ApiError as exc:
            log.info("leader election %s: updating the lease: %s", self.name, exc)
            return False
        return True

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Campaign until we lead, lead until we lose the Lease, then return.
        Cancelling stops the campaign (and releases the Lease if we lead)."""
        leading: asyncio.Task[None] | None = None
        try:
            await self._acquire()
            log.info("leader election %s: %s became leader", self.name, self.identity)
            if self.on_started_leading is not None:
                leading = asyncio.create_task(_call(self.on_started_leading), name=f"leading {self.name}")
            await self._renew()
            log.info("leader election %s: %s lost the lease", self.name, self.identity)
        except asyncio.CancelledError:
            if self.release_on_cancel and self.is_leader():
                await asyncio.shield(self.release())
            raise
        finally:
            # Whatever the Lease last said, this elector no longer campaigns or leads.
            self._observed, self._observed_raw = None, b""
            if leading is not None:
                leading.cancel()
                await asyncio.gather(leading, return_exceptions=True)
                await _call(self.on_stopped_leading)

    async def _acquire(self) -> None:
        while True:
            acquired = await self.try_acquire_or_renew()
            await self._report_leader()
            if acquired:
                return
            await self.clock.sleep(self.retry_period * (1 + random.random() * self.jitter))

    async def _renew(self) -> None:
        last_renew = self.clock.monotonic()
        while True:
            await self.clock.sleep(self.retry_period)
            renewed = await self.try_acquire_or_renew()
            await self._report_leader()
            if renewed:
                last_renew = self.clock.monotonic()
            elif not self.is_leader() or self.clock.monotonic() - last_renew >= self.renew_deadline:
                return

    async def _report_leader(self) -> None:
        leader = self.leader
        if leader and leader != self._reported_leader:
            self._reported_leader = leader
            await _call(self.on_new_leader, leader)

    async def release(self) -> bool:
        """Give the Lease up (only if we hold it): empty holder, 1 s duration."""
        if not self.is_leader() or self._lease is None:
            return False
        now = micro_time(self.clock.now())
        record = {"leaseDurationSeconds": 1, "acquireTime": now, "renewTime": now,
                  "leaseTransitions": (self._observed or {}).get("leaseTransitions") or 0}
        released = await self._write(record)
        if released:
            log.info("leader election %s: %s released the lease", self.name, self.identity)
        return released
