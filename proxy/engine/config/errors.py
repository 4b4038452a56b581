"""The one error a bad configuration raises: it names the full path of the offending
field (`static_resources.clusters[1].outlier_detection.consecutive_5xxx: unknown field`),
so a NACK or a refused reload tells the author exactly what to fix."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that cannot be used; `path` is where, `reason` is why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)
