"""Micro-benchmark of the storage layer (SQLiteStorage), run on uvloop like the API server.

    .venv/bin/python bench/storage_bench.py [--keys 20000] [--watchers 100] [--dir DIR]

Measures, each on a fresh database in a temporary directory: sequential creates,
updates and gets (one awaited call at a time, as request handlers issue them); listing
1000 keys; a paged list; watch fan-out (one write delivered to N watchers: latency from
the write call to each watcher receiving it, p50/p99/max); and compaction (rows/s and
the worst stall a concurrent writer sees). Numbers are for the storage layer alone,
without HTTP or JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import tempfile
import time
from collections.abc import Awaitable, Callable

import uvloop

from apiserver.storage.sqlite import SQLiteStorage

VALUE = b"x" * 600  # a small object (a ConfigMap, a Lease); Pods are a few KB


def report(name: str, ops: int, seconds: float) -> None:
    print(f"{name:<28} {ops / seconds:>12,.0f} ops/s   ({seconds * 1e6 / ops:8.1f} us/op, n={ops})")


def percentiles(name: str, samples: list[float]) -> None:
    samples.sort()
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))] * 1e3  # noqa: E731
    print(f"{name:<28} p50 {p(0.50):7.3f} ms   p99 {p(0.99):7.3f} ms   max {samples[-1] * 1e3:7.3f} ms"
          f"   (n={len(samples)})")


async def timed(fn: Callable[[int], Awaitable[object]], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        await fn(i)
    return time.perf_counter() - start


async def bench_crud(store: SQLiteStorage, n: int) -> None:
    keys = [f"/registry/pods/default/pod-{i:06d}" for i in range(n)]
    report("create", n, await timed(lambda i: store.create(keys[i], VALUE), n))
    report("create (value_fn)", n, await timed(
        lambda i: store.create(keys[i] + "-b", value_fn=lambda rev: VALUE + str(rev).encode()), n))
    revs = {kv.key: kv.mod_revision for kv in (await store.list("/registry/pods/default/")).items}

    async def update(i: int) -> None:
        kv = await store.update(keys[i], VALUE, expected_revision=revs[keys[i]])
        revs[keys[i]] = kv.mod_revision

    report("update (CAS)", n, await timed(update, n))
    report("get", n * 2, await timed(lambda i: store.get(keys[i % n]), n * 2))
    report("get missing", n, await timed(lambda i: store.get(keys[i] + "-nope"), n))


async def bench_list(store: SQLiteStorage) -> None:
    for i in range(1000):
        await store.create(f"/registry/configmaps/ns1/cm-{i:04d}", VALUE)
    reps = 50
    start = time.perf_counter()
    for _ in range(reps):
        res = await store.list("/registry/configmaps/ns1/")
    took = time.perf_counter() - start
    assert len(res.items) == 1000
    print(f"{'list 1000 keys':<28} {took / reps * 1e3:9.2f} ms/list")
    start = time.perf_counter()
    for _ in range(reps):
        after, pages = "", 0
        while True:
            res = await store.list("/registry/configmaps/", limit=100, start_after=after,
                                   revision=store.current_revision())
            pages += 1
            if not res.more:
                break
            after = res.items[-1].key
    took = time.perf_counter() - start
    print(f"{'list 1000 in pages of 100':<28} {took / reps * 1e3:9.2f} ms/list ({pages} pages)")


async def bench_fanout(store: SQLiteStorage, watchers: int, writes: int) -> None:
    latencies: list[float] = []

    async def consume(w: object) -> None:
        async for ev in w:  # type: ignore[attr-defined]
            latencies.append(time.perf_counter() - struct.unpack("d", ev.kv.value)[0])

    ws = [store.watch("/registry/leases/", revision=store.current_revision()) for _ in range(watchers)]
    tasks = [asyncio.create_task(consume(w)) for w in ws]
    await asyncio.sleep(0)
    start = time.perf_counter()
    for i in range(writes):
        await store.create(f"/registry/leases/l-{i}", struct.pack("d", time.perf_counter()))
        await asyncio.sleep(0)
    while len(latencies) < watchers * writes and time.perf_counter() - start < 30:
        await asyncio.sleep(0.001)
    took = time.perf_counter() - start
    for w in ws:
        w.close()
    await asyncio.gather(*tasks)
    percentiles(f"fan-out to {watchers} watchers", latencies)
    print(f"{'  events delivered':<28} {len(latencies) / took:>12,.0f} events/s")


async def bench_compact(store: SQLiteStorage, n: int) -> None:
    """n keys updated 10 times each, then compacted while a writer keeps writing."""
    for i in range(n):
        kv = await store.create(f"/registry/events/e-{i}", VALUE)
        for _ in range(9):
            kv = await store.update(kv.key, VALUE, expected_revision=kv.mod_revision)
    target = store.current_revision()
    stalls: list[float] = []
    done = asyncio.Event()

    async def writer() -> None:
        i = 0
        while not done.is_set():
            t = time.perf_counter()
            await store.create(f"/registry/other/o-{i}", VALUE)
            await asyncio.sleep(0)
            stalls.append(time.perf_counter() - t)
            i += 1

    task = asyncio.create_task(writer())
    start = time.perf_counter()
    await store.compact(target)
    took = time.perf_counter() - start
    done.set()
    await task
    print(f"{'compact':<28} {n * 9 / took:>12,.0f} rows/s deleted ({took * 1e3:.0f} ms for {n * 9} rows)")
    percentiles("  writer latency meanwhile", stalls)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        def fresh(name: str) -> SQLiteStorage:
            return SQLiteStorage(os.path.join(tmp, name))

        for name, run in [
            ("crud", lambda s: bench_crud(s, args.keys)),
            ("list", bench_list),
            ("fanout", lambda s: bench_fanout(s, args.watchers, 2000)),
            ("compact", lambda s: bench_compact(s, args.keys // 4)),
        ]:
            store = fresh(name)
            try:
                await run(store)
            finally:
                await store.close()
        size = os.path.getsize(os.path.join(tmp, "compact"))
        print(f"{'db file after compaction':<28} {size / 1e6:9.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20000)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--dir", default=None, help="where to put the temporary databases")
    args = parser.parse_args()
    print(f"storage bench: SQLiteStorage on uvloop, {os.cpu_count()} CPUs")
    uvloop.run(main(args))
