"""strategy.now_rfc3339: metav1.Time to the second, re-formatted when the second changes."""

from __future__ import annotations

import time

from apiserver.registry import strategy


def test_now_follows_the_clock_across_seconds(monkeypatch):
    clock = [1_700_000_000.2]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    assert strategy.now_rfc3339() == "2023-11-14T22:13:20Z"
    clock[0] = 1_700_000_000.9
    assert strategy.now_rfc3339() == "2023-11-14T22:13:20Z"
    clock[0] = 1_700_000_001.0
    assert strategy.now_rfc3339() == "2023-11-14T22:13:21Z"
    clock[0] = 1_600_000_000.0  # the clock may step back
    assert strategy.now_rfc3339() == "2020-09-13T12:26:40Z"
