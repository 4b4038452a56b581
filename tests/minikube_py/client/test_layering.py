"""The client runtime is the bottom layer (ARCHITECTURE.md §2 rule 1): it imports no
component (apiserver, controllers, kubelet, proxy, cni) and nothing else of
minikube_py; inside it, each module imports only modules listed before it below, so
there are no cycles and the low layers stay usable alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[3] / "minikube_py" / "client"
ORDER = [
    "clock", "errors", "resources", "labels",  # plain building blocks
    "clientconfig", "streaming", "rest",  # ApiClient
    "store", "informer",  # caches
    "workqueue", "controller",  # keys -> reconcile
    "leaderelection", "events",  # on top of ApiClient
    "component",  # a component process's client and signal handling
]
COMPONENTS = {"apiserver", "controllers", "kubelet", "proxy", "cni"}


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "minikube_py.client":  # from minikube_py.client import rest
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return names


def test_every_module_is_placed() -> None:
    assert {p.stem for p in CLIENT.glob("*.py") if p.stem != "__init__"} == set(ORDER)


@pytest.mark.parametrize("module", ORDER)
def test_module_imports_only_lower_modules(module: str) -> None:
    for name in imports_of(CLIENT / f"{module}.py"):
        top = name.split(".")[0]
        assert top not in COMPONENTS, f"{module} imports the component {name}"
        if top != "minikube_py":
            continue
        assert name.startswith("minikube_py.client."), f"{module} imports {name} from outside the client"
        other = name.split(".")[2]
        assert ORDER.index(other) < ORDER.index(module), f"{module} imports {other}, which is above it"
