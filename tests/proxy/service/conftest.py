"""The proxy's async tests run on both event loops: asyncio's and uvloop's (what
`mkp proxy` runs on), since transports differ in flow control and half-close details."""

from __future__ import annotations

import asyncio

import pytest
import uvloop


@pytest.fixture(scope="session", params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    if request.param == "uvloop":
        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()
