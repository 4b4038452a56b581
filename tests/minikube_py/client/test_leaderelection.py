"""Leader election on a real Lease, with a FakeClock: acquire, renew, hand over."""

from __future__ import annotations

import asyncio
import re

import pytest

from minikube_py.client import LEASES, ApiClient, FakeClock, LeaderElector, micro_time, settle

MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Candidate:
    """An elector plus a record of its callbacks, run as a task."""

    def __init__(self, client: ApiClient, clock: FakeClock, identity: str, **options: object) -> None:
        self.log: list[str] = []
        self.elector = LeaderElector(
            client, "controller", namespace="kube-system", identity=identity, clock=clock, jitter=0,
            on_started_leading=self._started, on_stopped_leading=lambda: self.log.append("stopped"),
            on_new_leader=lambda who: self.log.append(f"leader={who}"), **options)  # type: ignore[arg-type]
        self.task: asyncio.Task[None] | None = None

    async def _started(self) -> None:
        self.log.append("started")
        await asyncio.Event().wait()  # the component's work, until leadership ends

    def start(self) -> None:
        self.task = asyncio.create_task(self.elector.run())

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def tick(clock: FakeClock, seconds: float, sleepers: int) -> None:
    """Advance the clock, then wait until the electors have acted and sleep again."""
    clock.advance(seconds)
    await settle()
    await clock.wait_for_sleepers(sleepers)


async def lease(client: ApiClient) -> dict:
    return (await client.get(LEASES, "controller", "kube-system"))["spec"]


async def test_first_candidate_creates_the_lease_and_renews_it(client: ApiClient) -> None:
    clock = FakeClock()
    a = Candidate(client, clock, "a")
    a.start()
    try:
        await clock.wait_for_sleepers(1)
        await settle()
        assert a.elector.is_leader() and a.log == ["leader=a", "started"]
        spec = await lease(client)
        assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15
        assert spec["leaseTransitions"] == 0 and MICRO_TIME.match(spec["renewTime"])
        assert spec["acquireTime"] == spec["renewTime"] == micro_time(clock.now())
        await tick(clock, 2, 1)
        renewed = await lease(client)
        assert renewed["acquireTime"] == spec["acquireTime"] and renewed["renewTime"] > spec["renewTime"]
        assert clock.next_wakeup() == 2  # renews every retry period
    finally:
        await a.stop()


async def test_handover_after_the_leader_stops_renewing(client: ApiClient) -> None:
    clock = FakeClock()
    a = Candidate(client, clock, "a", release_on_cancel=False)
    b = Candidate(client, clock, "b")
    a.start()
    await clock.wait_for_sleepers(1)
    b.start()
    await clock.wait_for_sleepers(2)
    try:
        assert b.log == ["leader=a"] and not b.elector.is_leader()
        for _ in range(3):  # a renews; b keeps waiting
            await tick(clock, 2, 2)
        assert not b.elector.is_leader()
        await a.stop()  # a crashes: no release, the lease just stops being renewed
        assert a.log == ["leader=a", "started", "stopped"]
        stopped_at = clock.monotonic()  # a's last renewal was at this tick
        while not b.elector.is_leader():
            await tick(clock, 2, 1)
            await settle()
            assert clock.monotonic() - stopped_at <= 18, "b never took over"
        # Not before leaseDurationSeconds (15 s) after b last saw the record change, which
        # was a's last renewal or the retry period after it.
        assert 15 < clock.monotonic() - stopped_at <= 18
        assert b.log == ["leader=a", "leader=b", "started"]
        spec = await lease(client)
        assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
        assert spec["acquireTime"] == micro_time(clock.now())
    finally:
        await b.stop()


async def test_release_on_cancel_lets_the_successor_take_over_at_once(client: ApiClient) -> None:
    clock = FakeClock()
    a, b = Candidate(client, clock, "a"), Candidate(client, clock, "b")
    a.start()
    await clock.wait_for_sleepers(1)
    b.start()
    await clock.wait_for_sleepers(2)
    try:
        await a.stop()
        released = await lease(client)
        assert "holderIdentity" not in released or not released["holderIdentity"]
        assert released["leaseDurationSeconds"] == 1
        await tick(clock, 2, 1)  # b's next retry, long before 15 s
        await settle()
        assert b.elector.is_leader()
        assert (await lease(client))["leaseTransitions"] == 1
    finally:
        await b.stop()


async def test_leader_steps_down_when_it_cannot_renew(client: ApiClient) -> None:
    clock = FakeClock()
    a = Candidate(client, clock, "a")
    a.start()
    await clock.wait_for_sleepers(1)
    # Someone else writes the lease (as after a network partition healed on their side):
    current = await client.get(LEASES, "controller", "kube-system")
    current["spec"]["holderIdentity"] = "intruder"
    await client.update(LEASES, current)
    clock.advance(2)
    await asyncio.wait_for(a.task, 5)  # type: ignore[arg-type]
    assert a.log == ["leader=a", "started", "leader=intruder", "stopped"]
    assert not a.elector.is_leader()


async def test_leader_gives_up_after_renew_deadline_of_failed_renewals(client: ApiClient, apiserver) -> None:
    clock = FakeClock()
    a = Candidate(client, clock, "a")
    a.start()
    await clock.wait_for_sleepers(1)
    a.elector.client = ApiClient("http://127.0.0.1:9")  # the API server becomes unreachable
    try:
        for _ in range(4):  # 8 s of failed renewals: still leading
            await tick(clock, 2, 1)
            assert a.log[-1] == "started"
        clock.advance(2)  # 10 s = renew deadline
        await asyncio.wait_for(a.task, 5)  # type: ignore[arg-type]
        assert a.log[-1] == "stopped"
    finally:
        await a.elector.client.close()


def test_timing_must_be_consistent(client: ApiClient) -> None:
    with pytest.raises(ValueError):
        LeaderElector(client, "x", lease_duration=10, renew_deadline=10)
    with pytest.raises(ValueError):
        LeaderElector(client, "x", renew_deadline=2, retry_period=2)
