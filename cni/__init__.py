"""Pod networking modelled on the CNI specification 1.0: plugins (in-process objects or
real plugin binaries), the libcni-style chain runner, host-local IPAM, the loopback and
bridge pod network modes, and the NetworkManager facade the kubelet uses.

The names below are loaded when first used (PEP 562), so that `mkp up`, which only
needs the address plan (`cni.addressing`), does not import the plugin machinery.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "NetworkConfigList": "cni.config", "RuntimeConf": "cni.config",
    "ExecPlugin": "cni.invoke", "Plugin": "cni.invoke", "PluginRegistry": "cni.invoke",
    "CNIConfig": "cni.libcni",
    "NetworkManager": "cni.manager", "NetworkPlugin": "cni.manager", "PodNetwork": "cni.manager",
    "DNS": "cni.types", "CNIError": "cni.types", "Interface": "cni.types", "IPConfig": "cni.types",
    "Result": "cni.types", "Route": "cni.types",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cni' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
