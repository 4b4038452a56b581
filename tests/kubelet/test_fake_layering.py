"""Fake nodes talk to the cluster through the API only (ARCHITECTURE.md §2 rule 1): they
import the client runtime and shared API helpers, never another component."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.minikube_py.client.test_layering import COMPONENTS, imports_of

FAKE = Path(__file__).resolve().parents[2] / "kubelet" / "fake"


@pytest.mark.parametrize("module", sorted(p.name for p in FAKE.glob("*.py")))
def test_fake_nodes_import_no_other_component(module: str) -> None:
    for name in imports_of(FAKE / module):
        top = name.split(".")[0]
        if top == "kubelet":
            assert name.startswith("kubelet.fake"), f"{module} imports {name}"
        else:
            assert top not in COMPONENTS, f"{module} imports the component {name}"
        if top == "minikube_py":
            assert name.startswith(("minikube_py.client", "minikube_py.api")), f"{module} imports {name}"
