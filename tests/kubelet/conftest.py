"""Fixtures for the kubelet tests: the in-process API server and client of the client
runtime's tests (imported, not copied), and a fake clock."""

from __future__ import annotations

import pytest

from minikube_py.client import FakeClock
from tests.minikube_py.client.conftest import apiserver, client  # noqa: F401 - fixtures used by name


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
