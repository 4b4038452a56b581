"""The `nginx.ingress.kubernetes.io/*` annotations this controller honours, parsed once per
Ingress into a `LocationConfig` that every location of that Ingress carries.

As in ingress-nginx, an unparsable value is ignored (the default applies) and reported;
the controller turns the reports into Warning events so `kubectl describe ingress` shows
them. Honoured:

    ssl-redirect            308 to https when the host has TLS (default true, as ingress-nginx)
    force-ssl-redirect      308 to https even without TLS (default false)
    rewrite-target          rewrite the path with the location's regex ($1..$9); implies use-regex
    use-regex               the Ingress's paths are case-insensitive regexes anchored at the start
    limit-rps, limit-rpm    requests per second / minute per client address; burst = limit x
                            limit-burst-multiplier (default 5); over it: 503, as ingress-nginx
    limit-connections       concurrent connections per client address; over it: 503
    proxy-connect-timeout   seconds to connect to a pod (default 5); over it the next endpoint
    proxy-read-timeout      seconds between two reads from the pod (default 60); over it 504
    proxy-body-size         largest request body by Content-Length, nginx size ("8m", "512k";
                            "0" for no limit; default 1m); over it 413

`rate-limit` is not an ingress-nginx annotation, but the study guide's seed Ingress uses
it; it is read as `limit-rps` (when `limit-rps` itself is absent) so the seed does what
its author meant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

PREFIX = "nginx.ingress.kubernetes.io/"
SEED_RATE_LIMIT = "rate-limit"  # the seed's name for limit-rps

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}  # Go's strconv.ParseBool, as ingress-nginx uses
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


@dataclass(frozen=True)
class LocationConfig:
    """What the annotations of one Ingress ask of each of its locations."""

    ssl_redirect: bool = True
    force_ssl_redirect: bool = False
    rewrite_target: str | None = None
    use_regex: bool = False
    limit_rps: int = 0
    limit_rpm: int = 0
    limit_burst_multiplier: int = 5
    limit_connections: int = 0
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    proxy_body_size: int = 1024 * 1024
    errors: tuple[str, ...] = field(default=(), compare=False)

    @property
    def regex(self) -> bool:
        return self.use_regex or self.rewrite_target is not None

    @property
    def rate_limited(self) -> bool:
        return bool(self.limit_rps or self.limit_rpm or self.limit_connections)


def _bool(value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("not a boolean")


def _count(value: str) -> int:
    number = int(value.strip())
    if number < 0:
        raise ValueError("must not be negative")
    return number


def _seconds(value: str) -> float:
    number = int(value.strip().removesuffix("s"))
    if number <= 0:
        raise ValueError("must be a positive number of seconds")
    return float(number)


def _size(value: str) -> int:
    """An nginx size: bytes, or with k / m / g (either case)."""
    value = value.strip()
    factor = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}.get(value[-1:].lower(), 1)
    digits = value[:-1] if factor > 1 else value
    if not digits.isdigit():
        raise ValueError("not an nginx size like 1m, 512k or 1048576")
    return int(digits) * factor


_PARSERS: dict[str, tuple[str, Any]] = {
    "ssl-redirect": ("ssl_redirect", _bool),
    "force-ssl-redirect": ("force_ssl_redirect", _bool),
    "rewrite-target": ("rewrite_target", str),
    "use-regex": ("use_regex", _bool),
    "limit-rps": ("limit_rps", _count),
    "limit-rpm": ("limit_rpm", _count),
    "limit-burst-multiplier": ("limit_burst_multiplier", _count),
    "limit-connections": ("limit_connections", _count),
    "proxy-connect-timeout": ("connect_timeout", _seconds),
    "proxy-read-timeout": ("read_timeout", _seconds),
    "proxy-body-size": ("proxy_body_size", _size),
}


def parse(annotations: Mapping[str, str] | None) -> LocationConfig:
    """The LocationConfig of an Ingress with these annotations; bad values are left out
    and described in `.errors`."""
    annotations = annotations or {}
    values: dict[str, Any] = {}
    errors: list[str] = []
    names = dict(_PARSERS)
    if PREFIX + "limit-rps" not in annotations:
        names[SEED_RATE_LIMIT] = _PARSERS["limit-rps"]
    for name, (attribute, parser) in names.items():
        raw = annotations.get(PREFIX + name)
        if raw is None:
            continue
        try:
            values[attribute] = parser(str(raw))
        except ValueError as exc:
            errors.append(f"annotation {PREFIX}{name}: invalid value {raw!r}: {exc}")
    config = replace(LocationConfig(), **values)
    if config.limit_burst_multiplier < 1:
        errors.append(f"annotation {PREFIX}limit-burst-multiplier: must be at least 1")
        config = replace(config, limit_burst_multiplier=1)
    return replace(config, errors=tuple(errors))
