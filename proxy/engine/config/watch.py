"""Reloading the bootstrap file when it changes.

Polling the file's (mtime, size, inode) every `interval` is used rather than inotify:
it needs no extra dependency, catches editors that replace the file by rename and
Kubernetes ConfigMap symlink swaps alike, and a half-second delay is fine for a config
reload. Each change is parsed and validated in full; the callback gets either the new
Bootstrap or the ConfigError, and the caller keeps serving the old model on an error.
An unchanged file (same content after a touch) is not reported twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from proxy.engine.config.bootstrap import Bootstrap, load
from proxy.engine.config.errors import ConfigError

OnChange = Callable[[Bootstrap | None, ConfigError | None], None]


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class ConfigWatcher:
    """Polls one file; `check()` does one poll (for tests and for a caller's own loop),
    `run()` polls forever. The initial content counts as seen."""

    def __init__(self, path: str | Path, on_change: OnChange, *, interval: float = 0.5) -> None:
        self.path = Path(path)
        self.on_change = on_change
        self.interval = interval
        self._stamp = _stamp(self.path)
        self._digest = self._read_digest()

    def _read_digest(self) -> bytes | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).digest()
        except OSError:
            return None

    def check(self) -> bool:
        """Reload if the file changed; True if on_change was called."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        digest = self._read_digest()
        if digest == self._digest or digest is None:
            return False  # touched but equal, or gone (a rename in progress): keep the old one
        self._digest = digest
        try:
            boot = load(self.path)
        except ConfigError as e:
            self.on_change(None, e)
        else:
            self.on_change(boot, None)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.check()


def watch(path: str | Path, on_change: OnChange, *, interval: float = 0.5) -> asyncio.Task[None]:
    """Start polling `path` in the running loop; cancel the returned task to stop."""
    return asyncio.get_running_loop().create_task(ConfigWatcher(path, on_change, interval=interval).run())
