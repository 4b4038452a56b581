"""Architecture rule 1: components talk only through the API server's REST API.

Controllers, the scheduler, kubelets, the proxy, CNI and the client runtime never import
the API server's code, so each can run as its own process or on another host."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPONENTS = ["controllers", "kubelet", "proxy", "cni", "minikube_py/client"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("component", COMPONENTS)
def test_components_do_not_import_the_api_server(component):
    offenders = []
    for path in sorted((ROOT / component).rglob("*.py")):
        bad = sorted(m for m in _imports(path) if m == "apiserver" or m.startswith("apiserver."))
        if bad:
            offenders.append(f"{path.relative_to(ROOT)}: {', '.join(bad)}")
    assert not offenders, "imports of apiserver from a component:\n" + "\n".join(offenders)
