"""How a plugin is called: in-process objects and real plugin binaries behind one protocol.

The CNI spec defines a plugin as an executable that reads its configuration on stdin,
its parameters from CNI_* environment variables, and prints a Result or an error object.
Our own plugins (the loopback pod network, host-local IPAM) are Python objects with the
same three operations, given the very configuration dict the binary would read on stdin,
so a chain can mix them with Debian's containernetworking-plugins binaries (bridge,
host-local, portmap ...) that ExecPlugin runs with the exec protocol.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from cni.config import RuntimeConf
from cni.types import (
    ERR_DECODING_FAILURE,
    ERR_INTERNAL,
    SUPPORTED_VERSIONS,
    CNIError,
    Result,
)

DEFAULT_CNI_PATH = ("/opt/cni/bin", "/usr/lib/cni")  # kubelet's default, then Debian's
EXEC_TIMEOUT = 60.0


class Plugin(Protocol):
    """One CNI plugin. `conf` is the plugin's stdin configuration: its conflist entry with
    `name`, `cniVersion` and, in a chain, `prevResult` and `runtimeConfig` filled in."""

    async def add(self, conf: dict[str, Any], rt: RuntimeConf) -> Result: ...

    async def delete(self, conf: dict[str, Any], rt: RuntimeConf) -> None: ...

    async def check(self, conf: dict[str, Any], rt: RuntimeConf) -> None: ...

    async def version(self) -> dict[str, Any]: ...


class PluginRegistry:
    """Maps a config's `type` to a plugin: an in-process one registered here, else the
    executable of that name on the CNI path (libcni's FindInPath)."""

    def __init__(self, cni_path: Iterable[str] = DEFAULT_CNI_PATH) -> None:
        self.cni_path = [str(p) for p in cni_path]
        self._builtin: dict[str, Plugin] = {}

    def register(self, type_name: str, plugin: Plugin) -> None:
        self._builtin[type_name] = plugin

    def find_binary(self, type_name: str) -> Path:
        if "/" in type_name or type_name in ("", ".", ".."):
            raise CNIError(ERR_INTERNAL, f"invalid plugin name {type_name!r}")
        for directory in self.cni_path:
            candidate = Path(directory) / type_name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
        raise CNIError(ERR_INTERNAL, f'failed to find plugin "{type_name}" in path {self.cni_path}')

    def get(self, type_name: str) -> Plugin:
        if type_name in self._builtin:
            return self._builtin[type_name]
        return ExecPlugin(self.find_binary(type_name), cni_path=self.cni_path)


class ExecPlugin:
    """A plugin binary driven with the CNI exec protocol."""

    def __init__(self, binary: Path, *, cni_path: Iterable[str] = DEFAULT_CNI_PATH,
                 timeout: float = EXEC_TIMEOUT) -> None:
        self.binary = Path(binary)
        self.cni_path = [str(p) for p in cni_path]
        self.timeout = timeout

    async def add(self, conf: dict[str, Any], rt: RuntimeConf) -> Result:
        out = await self._run("ADD", conf, rt)
        try:
            data = json.loads(out)
        except ValueError:
            raise CNIError(ERR_DECODING_FAILURE, f"{self.binary.name}: invalid result on stdout",
                           out[:300].decode(errors="replace")) from None
        return Result.from_json(data)

    async def delete(self, conf: dict[str, Any], rt: RuntimeConf) -> None:
        await self._run("DEL", conf, rt)

    async def check(self, conf: dict[str, Any], rt: RuntimeConf) -> None:
        await self._run("CHECK", conf, rt)

    async def version(self) -> dict[str, Any]:
        # VERSION reads {"cniVersion"} on stdin and needs no other variable.
        out = await self._exec({"CNI_COMMAND": "VERSION"}, {"cniVersion": SUPPORTED_VERSIONS[-1]})
        try:
            data = json.loads(out)
        except ValueError:
            raise CNIError(ERR_DECODING_FAILURE, f"{self.binary.name}: invalid VERSION output") from None
        if not isinstance(data, dict) or not isinstance(data.get("supportedVersions"), list):
            raise CNIError(ERR_DECODING_FAILURE, f"{self.binary.name}: invalid VERSION output", repr(data)[:200])
        return data

    def environment(self, command: str, rt: RuntimeConf) -> dict[str, str]:
        """The CNI_* variables for one call."""
        return {"CNI_COMMAND": command, "CNI_CONTAINERID": rt.container_id, "CNI_NETNS": rt.netns,
                "CNI_IFNAME": rt.ifname, "CNI_ARGS": rt.cni_args(), "CNI_PATH": os.pathsep.join(self.cni_path)}

    async def _run(self, command: str, conf: dict[str, Any], rt: RuntimeConf) -> bytes:
        return await self._exec(self.environment(command, rt), conf)

    async def _exec(self, cni_env: dict[str, str], conf: dict[str, Any]) -> bytes:
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), **cni_env}
        try:
            proc = await asyncio.create_subprocess_exec(
                str(self.binary), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, env=env)
        except OSError as exc:
            raise CNIError(ERR_INTERNAL, f"failed to run plugin {self.binary}: {exc}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(json.dumps(conf).encode()), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise CNIError(ERR_INTERNAL, f"plugin {self.binary.name} timed out after {self.timeout:.0f}s") from None
        if proc.returncode == 0:
            return out
        raise self._error(proc.returncode, out, err)

    def _error(self, returncode: int | None, out: bytes, err: bytes) -> CNIError:
        """The plugin's error object, or one built from its stderr if it printed none."""
        try:
            return CNIError.from_json(json.loads(out))
        except (ValueError, CNIError):
            text = (err or out).decode(errors="replace").strip()
            return CNIError(ERR_INTERNAL, f"netplugin failed: {text or f'{self.binary.name} exited {returncode}'}")
