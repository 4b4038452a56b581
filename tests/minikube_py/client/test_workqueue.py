"""The work queue's client-go invariants, table-driven, on a FakeClock (no sleeping)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from minikube_py.client import FakeClock, ItemExponentialFailureRateLimiter, ShutDown, WorkQueue, settle

Step = tuple[Any, ...]


async def run_steps(steps: list[Step]) -> None:
    """Apply steps to a fresh queue. Actions: add k, add_after k s, rate k, forget k,
    done k, advance s, shutdown; checks: get k (the next key is k), len n,
    processing n, waiting n, requeues k n, empty_get (get would have to wait),
    get_shutdown (get raises ShutDown)."""
    clock = FakeClock()
    queue: WorkQueue[str] = WorkQueue("test", clock=clock)
    for number, step in enumerate(steps):
        op, *args = step
        where = f"step {number} {step}"
        if op == "add":
            queue.add(args[0])
        elif op == "add_after":
            queue.add_after(args[0], args[1])
        elif op == "rate":
            queue.add_rate_limited(args[0])
        elif op == "forget":
            queue.forget(args[0])
        elif op == "done":
            queue.done(args[0])
        elif op == "advance":
            clock.advance(args[0])
            await settle()
        elif op == "shutdown":
            queue.shutdown()
        elif op == "get":
            assert await asyncio.wait_for(queue.get(), 1) == args[0], where
        elif op == "get_shutdown":
            with pytest.raises(ShutDown):
                await asyncio.wait_for(queue.get(), 1)
        elif op == "empty_get":
            getter = asyncio.ensure_future(queue.get())
            await settle()
            assert not getter.done(), where
            getter.cancel()
            await asyncio.gather(getter, return_exceptions=True)
        elif op == "len":
            assert len(queue) == args[0], where
        elif op == "processing":
            assert queue.processing == args[0], where
        elif op == "waiting":
            assert queue.waiting == args[0], where
        elif op == "requeues":
            assert queue.num_requeues(args[0]) == args[1], where
        else:
            raise AssertionError(f"unknown step {step}")


CASES = [
    pytest.param([("add", "a"), ("add", "a"), ("add", "b"), ("len", 2), ("get", "a"), ("get", "b"), ("len", 0)],
                 id="duplicates-collapse-and-order-is-fifo"),
    pytest.param([("add", "a"), ("get", "a"), ("processing", 1), ("add", "a"), ("len", 0), ("empty_get",),
                  ("done", "a"), ("len", 1), ("get", "a"), ("done", "a"), ("len", 0), ("processing", 0)],
                 id="re-added-while-processing-waits-for-done"),
    pytest.param([("add", "a"), ("get", "a"), ("add", "a"), ("add", "a"), ("done", "a"), ("len", 1),
                  ("get", "a"), ("done", "a"), ("len", 0)],
                 id="re-added-twice-while-processing-runs-once-more"),
    pytest.param([("add", "a"), ("get", "a"), ("done", "a"), ("len", 0), ("empty_get",)],
                 id="done-without-re-add-leaves-nothing"),
    pytest.param([("add_after", "a", 5), ("len", 0), ("waiting", 1), ("advance", 4.9), ("len", 0),
                  ("advance", 0.1), ("len", 1), ("waiting", 0), ("get", "a")],
                 id="add-after-waits-for-the-clock"),
    pytest.param([("add_after", "a", 10), ("add_after", "a", 2), ("advance", 2), ("len", 1), ("waiting", 0),
                  ("advance", 10), ("len", 1)],
                 id="add-after-earlier-time-wins"),
    pytest.param([("add_after", "a", 2), ("add_after", "a", 10), ("waiting", 1), ("advance", 2), ("len", 1),
                  ("get", "a"), ("done", "a"), ("advance", 10), ("len", 0)],
                 id="add-after-later-time-is-ignored"),
    pytest.param([("add_after", "a", 0), ("len", 1), ("add_after", "b", -1), ("len", 2)],
                 id="add-after-zero-adds-now"),
    pytest.param([("add_after", "a", 3), ("add", "a"), ("get", "a"), ("done", "a"), ("advance", 3), ("len", 1)],
                 id="add-after-still-fires-after-an-immediate-add"),
    pytest.param([("rate", "a"), ("requeues", "a", 1), ("len", 0), ("advance", 0.005), ("get", "a"),
                  ("done", "a"), ("rate", "a"), ("advance", 0.009), ("len", 0), ("advance", 0.001), ("len", 1),
                  ("requeues", "a", 2), ("forget", "a"), ("requeues", "a", 0)],
                 id="rate-limited-backoff-doubles-and-forget-resets"),
    pytest.param([("rate", "a"), ("rate", "a"), ("rate", "b"), ("requeues", "a", 2), ("requeues", "b", 1)],
                 id="backoff-is-per-key"),
    pytest.param([("add", "a"), ("add_after", "b", 1), ("shutdown",), ("add", "c"), ("advance", 5), ("len", 1),
                  ("get", "a"), ("get_shutdown",), ("waiting", 0)],
                 id="shutdown-drains-queued-keys-and-drops-new-and-delayed-ones"),
    pytest.param([("add", "a"), ("get", "a"), ("shutdown",), ("done", "a"), ("processing", 0), ("get_shutdown",)],
                 id="done-after-shutdown"),
]


@pytest.mark.parametrize("steps", CASES)
async def test_workqueue_invariants(steps: list[Step]) -> None:
    await run_steps(steps)


def test_item_backoff_is_5ms_doubling_to_1000s() -> None:
    limiter = ItemExponentialFailureRateLimiter()
    delays = [limiter.when("k") for _ in range(20)]
    assert delays[:4] == [0.005, 0.01, 0.02, 0.04]
    assert delays[17] == pytest.approx(655.36) and delays[18] == 1000.0 and delays[19] == 1000.0
    assert limiter.num_requeues("k") == 20
    for _ in range(100):
        limiter.when("k")
    assert limiter.when("k") == 1000.0  # no float overflow after very many failures
    limiter.forget("k")
    assert limiter.when("k") == 0.005


async def test_waiting_getters_are_served_in_order() -> None:
    queue: WorkQueue[str] = WorkQueue()
    first, second = asyncio.ensure_future(queue.get()), asyncio.ensure_future(queue.get())
    await settle()
    queue.add("x")
    queue.add("y")
    assert await asyncio.wait_for(first, 1) == "x" and await asyncio.wait_for(second, 1) == "y"


async def test_a_cancelled_getter_does_not_swallow_a_key() -> None:
    queue: WorkQueue[str] = WorkQueue()
    doomed, other = asyncio.ensure_future(queue.get()), asyncio.ensure_future(queue.get())
    await settle()
    queue.add("x")  # wakes `doomed`...
    doomed.cancel()  # ...which is cancelled before it runs: the wake-up passes to `other`
    assert await asyncio.wait_for(other, 1) == "x"
    assert doomed.cancelled()


async def test_shutdown_wakes_idle_getters() -> None:
    queue: WorkQueue[str] = WorkQueue()
    getter = asyncio.ensure_future(queue.get())
    await settle()
    queue.shutdown()
    with pytest.raises(ShutDown):
        await asyncio.wait_for(getter, 1)


async def test_many_workers_never_hold_one_key_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    holding: set[str] = set()
    handled: list[str] = []

    async def worker() -> None:
        while True:
            try:
                key = await queue.get()
            except ShutDown:
                return
            assert key not in holding, f"two workers hold {key}"
            holding.add(key)
            await settle(3)
            if len(handled) < 60:
                queue.add(key)  # a change arrives while we work on it
            handled.append(key)
            holding.discard(key)
            queue.done(key)

    workers = [asyncio.ensure_future(worker()) for _ in range(5)]
    for key in ("a", "b", "c"):
        queue.add(key)
    await asyncio.wait_for(queue.wait_idle(), 5)
    await queue.shutdown_with_drain()
    await asyncio.gather(*workers)
    assert set(handled) == {"a", "b", "c"} and len(handled) >= 60
