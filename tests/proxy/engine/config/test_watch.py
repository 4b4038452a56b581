"""Reloading on file change: a good edit hands over the new model, a bad one the
error (the caller keeps the old model), a touch without change nothing."""

from __future__ import annotations

import asyncio
import json
import os
import time

from proxy.engine.config import ConfigWatcher, watch

from .conftest import BASE


def _write(path, data) -> None:
    # replace by rename, as editors and ConfigMap updates do
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _bump_mtime(path) -> None:
    t = time.time() + 5
    os.utime(path, (t, t))


def test_changes_errors_and_touches(tmp_path):
    path = tmp_path / "envoy.yaml"
    _write(path, BASE)
    seen = []
    w = ConfigWatcher(path, lambda boot, err: seen.append((boot, err)))
    assert not w.check()  # the initial content counts as seen

    changed = json.loads(json.dumps(BASE))
    changed["static_resources"]["clusters"][0]["connect_timeout"] = "2s"
    _write(path, changed)
    assert w.check()
    boot, err = seen[-1]
    assert err is None and boot.clusters[0].connect_timeout == 2.0

    broken = json.loads(json.dumps(changed))
    broken["static_resources"]["clusters"][0]["connect_timeout"] = "soon"
    _write(path, broken)
    assert w.check()
    boot, err = seen[-1]
    assert boot is None and err.path == "static_resources.clusters[0].connect_timeout"

    _bump_mtime(path)  # touched, same bytes
    assert not w.check()
    assert len(seen) == 2

    path.unlink()  # gone mid-rename: nothing reported, the old model stays
    assert not w.check()
    _write(path, changed)
    assert w.check() and seen[-1][1] is None


def test_watch_task_reports_a_change(tmp_path):
    path = tmp_path / "envoy.json"
    _write(path, BASE)

    async def main():
        got: asyncio.Queue = asyncio.Queue()
        task = watch(path, lambda boot, err: got.put_nowait((boot, err)), interval=0.02)
        await asyncio.sleep(0.05)
        changed = json.loads(json.dumps(BASE))
        changed["static_resources"]["clusters"][1]["name"] = "api2"
        _write(path, changed)
        boot, err = await asyncio.wait_for(got.get(), 2)
        task.cancel()
        return boot, err

    boot, err = asyncio.run(main())
    assert err is None and [c.name for c in boot.clusters] == ["web", "api2"]
